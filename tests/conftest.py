"""Shared test set-up: Qt runs offscreen, and no test touches the user's real data or settings."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Settings and clinic scales are read from here; a fresh empty folder keeps tests hermetic.
os.environ["KAPMONITOR_CONFIG_DIR"] = tempfile.mkdtemp(prefix="kapmonitor-test-config-")
os.environ.pop("KAPMONITOR_DB", None)
