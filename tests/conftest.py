"""Shared test set-up: Qt must run offscreen and never touch the user's real data."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KAPMONITOR_NO_RESUME_PROMPT", "0")
