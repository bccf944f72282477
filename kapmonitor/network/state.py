"""The laptop's side of the sync: what the server has acknowledged, and when it last worked.

Kept in ``<database>.sync.json`` beside the database (0600, written atomically), not in the
database: the database is append-only, audited row by row and schema-checked, and a high-water
mark that moves at every sync is none of those. Nothing in it is clinical (table names, row
numbers, times, the server's address without its password). Losing or editing it loses
nothing: each pass resumes from the server's own marks (:mod:`kapmonitor.network.sync`); the file
serves ``kapmonitor sync status`` when the server cannot be reached.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kapmonitor.store.key_slots import write_private

SUFFIX = ".sync.json"


@dataclass
class SyncState:
    server: str = ""  # the server's address, without any password
    laptop_id: str = ""
    database_identity: str = ""
    acked: dict[str, int] = field(default_factory=dict)  # table -> highest rowid on the server
    last_attempt: str = ""  # ISO UTC, laptop clock
    last_success: str = ""
    last_error: str = ""
    rows_sent: int = 0  # by the last successful pass


def state_path(db_path: Path | str) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + SUFFIX)


def load(db_path: Path | str) -> SyncState:
    """The saved state (an empty one when missing or unreadable: the server knows the truth)."""
    try:
        data: Any = json.loads(state_path(db_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return SyncState()
    if not isinstance(data, dict):
        return SyncState()
    known = SyncState.__dataclass_fields__
    state = SyncState(**{k: v for k, v in data.items() if k in known})
    acked = state.acked if isinstance(state.acked, dict) else {}
    state.acked = {str(k): int(v) for k, v in acked.items() if isinstance(v, int)}
    return state


def save(db_path: Path | str, state: SyncState) -> None:
    text = json.dumps(asdict(state), indent=1, sort_keys=True)
    write_private(state_path(db_path), text.encode("utf-8"))
