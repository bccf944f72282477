"""Times the central dashboard and a patient's series on the bench's 100,000-session archive.

Run by hand (not part of ``kapmonitor bench``): ``python -m kapmonitor.bench_central_dashboard
[--quick]``. The archive is seeded exactly as :mod:`kapmonitor.bench_central_archive` seeds it
(20 laptops, one a real demo-recorded one). The seeded sessions' protocol copies are stubs the
domain cannot read, which would let the missed/late-check counts skip them; so each seeded
session's copy is then *corrected* (an appended correction row, as a laptop would append one) to
the real laptop's full protocol copy, and every session's checks are assessed, as they would be
in a real archive. Times are a reviewer role's on an open connection: the first call of the
process (cold) and three more (warm: the ended sessions' check counts are remembered).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path


def main(argv: list[str]) -> int:
    from kapmonitor.bench_central_archive import (
        FULL_SESSIONS,
        LAPTOPS,
        QUICK_SESSIONS,
        T0,
        _real_laptop,
        seed,
    )
    from kapmonitor.bench_live_lag import _reviewer_url
    from kapmonitor.bench_sync import bench_server
    from kapmonitor.network import admin
    from kapmonitor.network.central_archive import CentralArchive
    from kapmonitor.network.central_dashboard import (
        dashboard,
        forget_cached_counts,
        patient_series,
    )

    quick = "--quick" in argv
    sessions = QUICK_SESSIONS if quick else FULL_SESSIONS
    rounds = 3
    with bench_server() as (url, why), tempfile.TemporaryDirectory() as folder:
        if url is None:
            print(f"no PostgreSQL to measure against ({why})")
            return 1
        admin.init_server(url)
        began = time.perf_counter()
        seed(url, sessions - 10, LAPTOPS - 1)
        _real_laptop(Path(folder), url, 10)
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            real = pg.execute(
                "SELECT protocol_json FROM kap.session_protocols WHERE laptop_id LIKE 'real-%' "
                "LIMIT 1"
            ).fetchone()[0]
            pg.execute(
                "INSERT INTO kap.session_protocols (laptop_id, local_id, id, session_id, "
                "observed_at, recorded_at, recorded_by, supersedes_id, correction_reason, voided, "
                "protocol_id, protocol_name, protocol_version, protocol_json) "
                "SELECT laptop_id, local_id + 1000000000, id + 1000000000, session_id, "
                "observed_at, recorded_at, recorded_by, id, 'bench: the full copy', 0, "
                "protocol_id, protocol_name, protocol_version, %s FROM kap.session_protocols "
                "WHERE laptop_id NOT LIKE 'real-%%'",
                [real],
            )
            pg.execute("VACUUM (ANALYZE)")
        print(f"seeded {sessions:,} sessions in {time.perf_counter() - began:.0f} s", flush=True)
        end = (T0 + timedelta(days=740)).date()
        with CentralArchive(_reviewer_url(url)) as central:
            laptop = central.laptops()[0]
            code = central.page(offset=sessions // 2, limit=1).rows[0].patient_code
            cases = [
                (
                    "dashboard, last 90 days, every laptop",
                    lambda: dashboard(central, end - timedelta(days=90), end),
                ),
                (
                    "dashboard, last 365 days, every laptop",
                    lambda: dashboard(central, end - timedelta(days=365), end),
                ),
                ("dashboard, all sessions, every laptop", lambda: dashboard(central)),
                (
                    "dashboard, all sessions, one laptop",
                    lambda: dashboard(central, laptop_id=laptop),
                ),
                ("patient series (one patient's code)", lambda: patient_series(central, code)),
            ]
            for label, action in cases:
                forget_cached_counts()  # cold: the first dashboard of this process
                start = time.perf_counter()
                found = action()
                cold = (time.perf_counter() - start) * 1000
                warm = []
                for _ in range(rounds):  # warm: ended sessions' check counts remembered
                    start = time.perf_counter()
                    action()
                    warm.append((time.perf_counter() - start) * 1000)
                size = found.sessions if hasattr(found, "sessions") else len(found)
                missed = sum(c.value for c in getattr(found, "missed_checks", []))
                print(
                    f"{label}: {size:,} sessions ({missed:,} missed checks), cold {cold:.0f} ms, "
                    f"warm median {statistics.median(warm):.0f} ms, max {max(warm):.0f} ms",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
