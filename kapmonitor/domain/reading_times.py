"""The times of a session's vital-sign readings, in time order, eight bytes each.

A device feed records one reading a second, so a three-hour session has about 10,800 of them,
and the schedule asks about them after every save. Kept as ``datetime`` objects they cost 56
bytes each and grow the process by about 170 KiB an hour; kept as whole microseconds since the
epoch in an ``array`` they cost 8. The schedule still sees ``datetime``s (UTC, as every stored
time is): indexing and iteration make them one at a time, so a bisection makes about 14.

Only appends in time order are allowed (a reading older than the newest is the caller's cue to
rebuild), which is what makes a :meth:`snapshot` safe to hand out without a copy: it sees the
first ``n`` times, and nothing ever changes those.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import overload

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("naive datetime: clinical times must carry a timezone")
    return (when - _EPOCH) // _MICROSECOND


class ReadingTimes(Sequence[datetime]):
    """Aware UTC times in non-decreasing order, stored as ``array('q')`` of microseconds."""

    __slots__ = ("_length", "_values")

    def __init__(self, times: Iterable[datetime] = ()) -> None:
        self._values = array("q")
        self._length: int | None = None  # None: the live sequence; an int: a snapshot's length
        for when in times:
            self.append(when)

    @classmethod
    def _view(cls, micros: array, length: int) -> ReadingTimes:
        view = cls.__new__(cls)
        view._values = micros
        view._length = length
        return view

    def append(self, when: datetime) -> None:
        """Add the newest time; refuses an older one (the order is what bisection relies on)."""
        if self._length is not None:
            raise TypeError("a snapshot of reading times is read-only")
        value = _micros(when)
        if self._values and value < self._values[-1]:
            raise ValueError("reading times are appended in time order")
        self._values.append(value)

    def can_append(self, when: datetime) -> bool:
        """Whether ``when`` is at or after the newest time (else the caller rebuilds)."""
        return not self._values or _micros(when) >= self._values[-1]

    def snapshot(self) -> ReadingTimes:
        """The times as they are now, sharing storage: later appends do not show in it."""
        return ReadingTimes._view(self._values, len(self))

    def __len__(self) -> int:
        return len(self._values) if self._length is None else self._length

    @overload
    def __getitem__(self, index: int) -> datetime: ...

    @overload
    def __getitem__(self, index: slice) -> ReadingTimes: ...

    def __getitem__(self, index: int | slice) -> datetime | ReadingTimes:
        size = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(size)
            if step != 1:
                return ReadingTimes(self[i] for i in range(start, stop, step))
            part = self._values[start:stop] if stop > start else array("q")
            return ReadingTimes._view(part, len(part))
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("reading time index out of range")
        return _EPOCH + timedelta(microseconds=self._values[index])

    def __iter__(self) -> Iterator[datetime]:
        for index in range(len(self)):
            yield _EPOCH + timedelta(microseconds=self._values[index])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReadingTimes):
            return self._values[: len(self)] == other._values[: len(other)]
        if isinstance(other, (list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ReadingTimes({len(self)} times)"
