"""``kapmonitor verify --server URL``: the laptop's file held against the chain heads the server
recorded at each sync (:mod:`witness`), naming the laptop when they disagree."""

from __future__ import annotations

from pathlib import Path

from kapmonitor.network import state, witness
from kapmonitor.network.connection import connect, explain
from kapmonitor.store import anchors
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.key_slots import DatabaseKeys


def check_against_server(
    db_path: Path | str, url: str, keys: DatabaseKeys | None = None
) -> tuple[list[str], list[str]]:
    """(problems, notes): what disagrees with the server's record of this database, and how
    many recorded heads agree. Every head of this database's identity is checked, with the heads
    of the laptop(s) that ever sent it (a file replaced by another database is named too)."""
    import psycopg

    db = connect_readonly(db_path, keys)
    try:
        identity = anchors.identity(db)
        macs = {int(i): str(h) for i, h in db.execute("SELECT id, hash FROM audit").fetchall()}
    finally:
        db.close()
    saved = state.load(db_path)
    pg = connect(url)
    try:
        rows = pg.execute(
            "SELECT laptop_id, database_identity, entry, mac, server_received_at "
            "FROM kap.chain_heads WHERE laptop_id IN (SELECT laptop_id FROM kap.chain_heads "
            "WHERE database_identity = %s UNION SELECT %s) ORDER BY laptop_id, entry",
            [identity, saved.laptop_id],
        ).fetchall()
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
    finally:
        pg.close()
    by_laptop: dict[str, list[witness.Head]] = {}
    for laptop, ident, entry, mac, received in rows:
        by_laptop.setdefault(laptop, []).append(
            witness.Head(laptop, ident, int(entry), mac, f"{received:%Y-%m-%d %H:%M:%S %Z}")
        )
    if not by_laptop:
        return [
            f"the server holds no chain head of this database (identity {identity or 'empty'}): "
            "it never synced, or this file's trail was rebuilt from its first entry"
        ], []
    problems: list[str] = []
    notes: list[str] = []
    for laptop, heads in by_laptop.items():
        found = witness.disagreements(identity, macs, heads, laptop)
        problems += found
        if not found:
            notes.append(
                f"Server: laptop {laptop}'s {len(heads)} recorded chain head(s) agree "
                f"(newest #{heads[-1].entry})."
            )
    return problems, notes
