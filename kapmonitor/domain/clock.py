"""Time as the application sees it.

Every clinical time is stored as UTC text; the clock is injected so that a three-hour session can
run in a test in milliseconds, and so that the window derives every displayed duration from
stored timestamps rather than from a counter that a sleeping laptop would corrupt.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 15, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> datetime:
        self._now += timedelta(**kwargs)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)


def to_iso(when: datetime) -> str:
    """Fixed-width ISO 8601 UTC with milliseconds and ``Z``: sorts lexically as it sorts in time."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: clinical times must carry a timezone")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` with a sign for negative spans (before the dose)."""
    sign = "−" if seconds < 0 else ""
    total = int(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
