"""Where things live on disk.

Data is only ever written under platformdirs' per-user folders (or where ``--db`` /
``KAPMONITOR_DB`` say), never beside the executable: a packaged app may be installed in a
read-only folder, and clinic IT expects per-user data.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import platformdirs

from kapmonitor import APP_SLUG

DB_ENV_VAR = "KAPMONITOR_DB"
CONFIG_ENV_VAR = "KAPMONITOR_CONFIG_DIR"
#: A session id as the app makes it (``uuid.uuid4().hex``): 32 lower-case hexadecimal digits. The
#: only text an export file is named from, and what an import accepts as an id.
SESSION_ID_PATTERN = re.compile(r"[0-9a-f]{32}")


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


def is_session_id(value: object) -> bool:
    """Whether ``value`` is a session id the app could have made (so it can name a file)."""
    return isinstance(value, str) and SESSION_ID_PATTERN.fullmatch(value) is not None


class UnsafeName(ValueError):
    """A name that would place a file outside the folder it was meant for."""


def file_in(folder: Path, session_id: str, suffix: str) -> Path:
    """``folder/<session id><suffix>``, only for a valid session id, and only inside ``folder``.

    Why: export file names come from the database, and a session id like ``../../x`` (written
    by SQL, or imported by an older version) would otherwise be a path. The id pattern alone
    excludes separators and dots; the containment check is the second, independent guard.
    """
    if not is_session_id(session_id):
        raise UnsafeName(
            f"{str(session_id)[:40]!r} is not a KAP Monitor session id (32 hexadecimal "
            "characters), so it cannot name a file"
        )
    if "/" in suffix or "\\" in suffix or suffix.startswith(".."):
        raise UnsafeName(f"{suffix!r} is not a file suffix")
    target = Path(folder) / f"{session_id}{suffix}"
    if target.resolve().parent != Path(folder).resolve():
        raise UnsafeName(f"{target} would be written outside {folder}")
    return target
