"""The server as the outside witness of each laptop's audit chain.

Every sync records the laptop's chain head (entry number and MAC, with the database's identity)
in ``kap.chain_heads``, where the laptop's role can add but never change or remove a row. A file
later rolled back to an earlier copy ends before an entry the server recorded; a file whose
history was rewritten has a different MAC at a recorded entry; a file replaced by another
database has another identity. The sync refuses to push from such a file (its new rows would
reuse row numbers the server already holds, and be dropped as duplicates), and
``kapmonitor verify --server`` names the laptop.

What it cannot see: anything changed after the newest recorded head and never synced, and a
rewrite of rows whose audit entries were left untouched (the laptop's own verify catches that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Head:
    laptop_id: str
    database_identity: str
    entry: int
    mac: str
    received_at: str = ""  # the server's time, for the message


def disagreements(
    identity: str, macs: Mapping[int, str], heads: Sequence[Head], laptop: str = ""
) -> list[str]:
    """What is wrong with a file (its identity and its audit MACs by entry) against the heads
    the server recorded for it, in plain words naming the laptop; empty when all agree."""
    problems: list[str] = []
    last = max(macs) if macs else 0
    name = laptop or (heads[0].laptop_id if heads else "?")
    other = sorted({h.database_identity for h in heads if h.database_identity != identity})
    if other:
        problems.append(
            f"laptop {name}: the server recorded database {', '.join(other)} for it, but this "
            f"file is database {identity or '(empty)'}: the file was replaced by another one, "
            "or its whole trail rebuilt"
        )
    mine = [h for h in heads if h.database_identity == identity]
    rewritten = [h for h in mine if h.entry <= last and macs.get(h.entry) != h.mac]
    if rewritten:
        first = min(rewritten, key=lambda h: h.entry)
        what = "is missing from this file" if first.entry not in macs else "differs"
        problems.append(
            f"laptop {name}: audit entry #{first.entry} {what} from what the server recorded "
            f"at {first.received_at or 'a sync'}: the history was rewritten after it was synced"
        )
    beyond = [h for h in mine if h.entry > last]
    if beyond:
        furthest = max(beyond, key=lambda h: h.entry)
        problems.append(
            f"laptop {name}: this file's trail ends at entry #{last}, but the server recorded "
            f"entry #{furthest.entry} at {furthest.received_at or 'a sync'}: the file was "
            f"rolled back to an earlier copy (or its tail cut); entries #{last + 1}–"
            f"#{furthest.entry} are missing here"
        )
    return problems
