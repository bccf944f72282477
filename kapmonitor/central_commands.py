"""``kapmonitor sessions --server`` and ``kapmonitor export --server``: the command line on the
central archive (docs/network.md, "Review at the centre").

Why a module of its own: the listing and the exports read the archive as a reviewer
(:mod:`kapmonitor.network.central_archive`) and write through the export registry (reports), which
the network package may not import. The parser's part (:func:`add_archive_options`) imports
nothing but argparse, so building the command line stays light; the rest loads when a command
runs.

``--server`` takes the archive's URL, or, given with no value, ``$KAPMONITOR_SERVER`` (the saved
connection). Without ``--server`` both commands read the laptop's file exactly as before.

An export from the archive is audited at the archive (``kap.central_exports``: the signed-in
role, the operating-system account, the format, where it went, which sessions), before its files
are moved into place; the laptop's own trail is never written from here.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

SERVER_ENV = "KAPMONITOR_SERVER"  # kapmonitor.network.connection.SERVER_ENV
STATUS_CHOICES = ("open", "ended", "signed", "unsigned")  # store.archive.STATUSES


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def add_archive_options(parser: argparse.ArgumentParser, export: bool = False) -> None:
    """``--server`` and the archive's filters on ``sessions`` (and ``export --all``)."""
    parser.add_argument(
        "--server",
        nargs="?",
        const="",
        default=None,
        metavar="URL",
        help="read the central archive instead of this laptop's file: a reviewer's "
        "postgresql://ROLE@HOST:PORT/DB?sslmode=verify-full (no value: "
        f"${SERVER_ENV}); the password from ~/.pgpass or PGPASSWORD",
    )
    group = parser.add_argument_group(
        "central archive filters (with --server" + (" and --all)" if export else ")")
    )
    group.add_argument("--laptop", metavar="NAME", default="", help="one laptop's sessions")
    group.add_argument("--patient", metavar="CODE", default="", help="patient code (any part)")
    group.add_argument("--clinician", metavar="NAME", default="", help="clinician (any part)")
    group.add_argument("--protocol", metavar="ID", default="", help="protocol id")
    group.add_argument("--status", choices=STATUS_CHOICES, default="", help="session status")
    group.add_argument(
        "--from", dest="date_from", type=_day, metavar="DAY", help="started on or after"
    )
    group.add_argument(
        "--to", dest="date_to", type=_day, metavar="DAY", help="started on or before"
    )
    group.add_argument(
        "--adverse-events", action="store_true", help="only sessions with adverse events"
    )
    group.add_argument("--alarms", action="store_true", help="only sessions with alarms")
    if export:
        parser.add_argument(
            "--laptop-of-session",
            dest="session_laptop",
            metavar="NAME",
            default=None,
            help="with --server --session: the laptop that sent it, when several did",
        )


FILTER_OPTIONS = (
    ("laptop", "--laptop"),
    ("patient", "--patient"),
    ("clinician", "--clinician"),
    ("protocol", "--protocol"),
    ("status", "--status"),
    ("date_from", "--from"),
    ("date_to", "--to"),
    ("adverse_events", "--adverse-events"),
    ("alarms", "--alarms"),
)


def wants_server(args: argparse.Namespace) -> bool:
    """True when the command reads the central archive; refuses archive filters without it."""
    if getattr(args, "server", None) is not None:
        return True
    used = [option for name, option in FILTER_OPTIONS if getattr(args, name, None)]
    if used:
        from kapmonitor.store.errors import StoreError

        raise StoreError(
            f"{used[0]} filters the central archive: add --server (the laptop's own list is "
            "filtered in the review window).",
            "needs-server",
        )
    return False


def server_url(args: argparse.Namespace) -> str:
    from kapmonitor.store.errors import StoreError

    url = args.server or os.environ.get(SERVER_ENV, "")
    if not url:
        raise StoreError(
            f"no server given: use --server postgresql://ROLE@HOST/DB or set {SERVER_ENV}.",
            "no-server",
        )
    return str(url)


def archive_filter(args: argparse.Namespace) -> Any:
    from kapmonitor.store.archive import ArchiveFilter

    return ArchiveFilter(
        date_from=args.date_from,
        date_to=args.date_to,
        patient_code=args.patient,
        clinician=args.clinician,
        protocol_id=args.protocol,
        status=args.status,
        has_adverse_effects=args.adverse_events,
        has_alarms=args.alarms,
    )


def list_sessions(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    """``kapmonitor sessions --server``: the laptop's columns plus the laptop, newest first,
    read a page at a time."""
    from kapmonitor.network.central_archive import CentralArchive

    today = datetime.now(UTC).astimezone().date()
    shown = 0
    with CentralArchive(server_url(args)) as archive:
        for row in archive.list_sessions(archive_filter(args), laptop_id=args.laptop):
            if not shown:
                out(
                    f"{'session':<34}{'laptop':<14}{'patient':<14}{'started (local)':<18}"
                    f"{'status':<9}{'doses':>5}  clinicians"
                )
            shown += 1
            started = row.started_at.astimezone().strftime("%Y-%m-%d %H:%M")
            out(
                f"{row.session_id:<34}{row.laptop_id:<14}{row.patient_code:<14}{started:<18}"
                f"{row.status:<9}{row.doses:>5}  {', '.join(row.clinicians)}"
            )
            rems = row.rems_status(today)
            if rems is not None:
                out(f"{'':<34}{rems.text()}")
    if not shown:
        out("No sessions.")
    return 0


def _write_pdf(session: Any, target: Any, now: datetime) -> None:
    """The laptop's PDF report of one materialised session (``write_session_pdf`` opens a file
    by path; this is the same report from the in-memory copy)."""
    from kapmonitor.reports.pdf_report import render_session_pdf
    from kapmonitor.store import anchors, rems_store
    from kapmonitor.store.signoff import session_quality_flags

    store = session.store()
    log = store.load(session.session_id)
    flags = session_quality_flags(store, log, now)
    rems = None
    if log.protocol is not None and log.protocol.rems:
        today = now.astimezone().date()
        rems = (
            rems_store.form_fields(store.db, log),
            rems_store.status(store.db, log.id, today),
        )
    render_session_pdf(
        log,
        target.path(f"{session.session_id}.pdf"),
        flags,
        ref=store.ref,
        generated_at=now,
        rems=rems,
        chain_head=anchors.head_line(store.db),
    )


def write_export(fmt: Any, session: Any, target: Any, now: datetime) -> None:
    """Write one opened archive session in ``fmt`` to ``target``: the command line's and the
    clinic archive window's one way to do it (a PDF from the in-memory copy included)."""
    from kapmonitor.reports.session_export import no_progress
    from kapmonitor.store.session_transfer import read_snapshot

    if fmt.name == "pdf":
        _write_pdf(session, target, now)
        return
    with read_snapshot(session.db):
        fmt.writer(session.db, [session.session_id], target, no_progress)


def export(
    args: argparse.Namespace,
    out: Path,
    actor: str,
    progress: Callable[[int, int], None],
    say: Callable[[str], None] = print,
) -> int:
    """``kapmonitor export --server``: one session (``--session``), or every session the filters
    select (``--all``), streamed one session at a time: each is materialised, written to a
    staged file, and dropped before the next. With ``--all`` the files go to
    ``OUT/<laptop>/`` (``OUT/<laptop>/<session>/`` for CSV's folder of tables): the same
    session id may come from two laptops (an imported session), and each laptop's sessions
    stay apart. Nothing is moved into place until every file is written and the export is
    recorded in the archive's audit table."""
    from kapmonitor.network.central_archive import CentralArchive
    from kapmonitor.reports.export_registry import check_session_ids, export_format, export_target
    from kapmonitor.reports.session_export import ExportTarget
    from kapmonitor.store.errors import StoreError

    fmt = export_format(args.format)
    now = datetime.now(UTC)
    targets: list[ExportTarget] = []
    with CentralArchive(server_url(args)) as archive:
        if args.session:
            laptop = getattr(args, "session_laptop", None)
            keys = [(laptop or "", args.session)]
        else:
            keys = archive.session_keys(archive_filter(args), laptop_id=args.laptop)
            if not keys:
                raise StoreError("There are no sessions in the central archive to export.")
        check_session_ids([sid for _laptop, sid in keys])
        try:
            for done, (laptop, sid) in enumerate(keys, 1):
                with archive.open_session(sid, laptop or None) as session:
                    if args.session:
                        keys[0] = (session.laptop_id, sid)
                        destination = export_target(fmt, [sid], out, folder=False)
                        single = not fmt.writes_folder
                    else:
                        destination = out / session.laptop_id
                        if fmt.writes_folder:
                            destination = destination / sid
                        single = False
                    target = ExportTarget(destination, single=single)
                    targets.append(target)
                    write_export(fmt, session, target, now)
                progress(done, len(keys))
            archive.record_export(actor, fmt.name, out, keys)
        except BaseException:
            for target in targets:
                target.discard()
            raise
    for target in targets:
        target.commit()
    where = targets[0].destination if args.session else out
    noun = "session" if len(keys) == 1 else "sessions"
    say(f"exported {len(keys)} {noun} from the central archive to {where}")
    return 0


__all__ = [
    "add_archive_options",
    "archive_filter",
    "export",
    "list_sessions",
    "server_url",
    "wants_server",
]
