"""A laptop's sync pass in a process of its own, which stalls inside batch 3 (its transaction
open on the server) after writing a marker file, so the test can kill it with SIGKILL there.

Usage: python sync_child.py DB URL MARKER, with the database keys in $KAP_TEST_KEYS (hex).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from kapmonitor.network.sync import Hooks, sync_once
from kapmonitor.store.key_slots import DatabaseKeys


def main() -> None:
    db, url, marker = sys.argv[1:4]
    keys = DatabaseKeys.from_payload(bytes.fromhex(os.environ["KAP_TEST_KEYS"]))

    def stall(batch: int) -> None:
        if batch == 3:
            Path(marker).write_text("inside batch 3")
            time.sleep(600)

    sync_once(Path(db), url, keys, batch_rows=10, hooks=Hooks(before_commit=stall))


if __name__ == "__main__":
    main()
