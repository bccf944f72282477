"""Shared test set-up: Qt runs offscreen, and no test touches the user's real data or settings."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The offscreen platform's screen is the clinic laptop's: 1280 x 720 logical pixels (a 1366 x 768
# panel, or 1920 x 1080 at 150 %). Its default, 800 x 800, let windows too big for the laptop pass.
SCREEN_CONFIG = Path(__file__).with_name("clinic_screen.json")
os.environ.setdefault("QT_QPA_PLATFORM", f"offscreen:configfile={SCREEN_CONFIG}")
# Settings and clinic scales are read from here; a fresh empty folder keeps tests hermetic.
os.environ["KAPMONITOR_CONFIG_DIR"] = tempfile.mkdtemp(prefix="kapmonitor-test-config-")
os.environ.pop("KAPMONITOR_DB", None)
