"""Where things live on disk.

Data is only ever written under platformdirs' per-user folders (or where ``--db`` /
``KAPMONITOR_DB`` say), never beside the executable: a packaged app may be installed in a
read-only folder, and clinic IT expects per-user data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

from kapmonitor import APP_SLUG

DB_ENV_VAR = "KAPMONITOR_DB"
CONFIG_ENV_VAR = "KAPMONITOR_CONFIG_DIR"


def resources_dir() -> Path:
    """The bundled ``resources/`` folder, in a checkout or inside a PyInstaller bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_SLUG, appauthor=False))


def user_config_dir() -> Path:
    override = os.environ.get(CONFIG_ENV_VAR)
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_SLUG, appauthor=False))


def default_db_path() -> Path:
    return user_data_dir() / "kapmonitor.sqlite"


def resolve_db_path(cli_value: str | os.PathLike[str] | None) -> Path:
    """``--db`` wins over ``KAPMONITOR_DB``, which wins over the per-user default."""
    if cli_value:
        return Path(cli_value).expanduser()
    env = os.environ.get(DB_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_db_path()
