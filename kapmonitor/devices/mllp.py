"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol): ``<VT> message <FS><CR>``.

Why a decoder of our own: the listener must survive whatever arrives on its port (a monitor's
buffer flush, a half-sent message after a cable pull, a port scanner's junk, a runaway sender), so
the framing is a small state machine with hard limits, fed whatever bytes the socket returns:

- bytes outside a frame are junk: counted and dropped, and the decoder waits for the next ``<VT>``
  (resynchronisation);
- a ``<VT>`` inside a frame means the frame before it was cut short: it is reported as
  :class:`Discarded` ("truncated") and the new frame starts;
- a frame growing beyond ``max_size`` bytes (1 MiB by default) is reported once as
  :class:`Discarded` ("oversized") and the rest of it is skipped up to its ``<FS>`` without being
  kept: memory per connection stays bounded by ``max_size``;
- a frame ends at ``<FS>``; the ``<CR>`` after it is expected but a missing one only costs a byte
  of junk, so a sender that omits it still gets its answers.

The decoder never raises on input. It does not decode text or parse HL7: that is
:mod:`kapmonitor.devices.hl7_message`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CR",
    "FS",
    "MAX_MESSAGE_BYTES",
    "VT",
    "Discarded",
    "Frame",
    "MllpDecoder",
    "frame",
]

VT = b"\x0b"  # start block
FS = b"\x1c"  # end block
CR = b"\x0d"
MAX_MESSAGE_BYTES = 1024 * 1024  # the 1 MB cap per message
HEAD_BYTES = 4096  # kept of a discarded frame: enough for its MSH (to answer it)


@dataclass(frozen=True)
class Frame:
    """One complete message payload (between ``<VT>`` and ``<FS>``), still bytes."""

    payload: bytes


@dataclass(frozen=True)
class Discarded:
    """A frame that will never be complete: ``reason`` is "truncated" or "oversized".

    ``head`` is its first bytes, so the listener can still find MSH-10 and answer with a reason.
    """

    reason: str
    head: bytes


def frame(payload: bytes) -> bytes:
    """``payload`` wrapped for the wire (senders and tests)."""
    return VT + payload + FS + CR


class MllpDecoder:
    """Streaming MLLP decoder: :meth:`feed` bytes in any chunks, get complete events out."""

    def __init__(self, max_size: int = MAX_MESSAGE_BYTES) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._in_frame = False
        self._skipping = False  # inside an oversized frame, dropping bytes up to its end
        self.junk_bytes = 0  # bytes seen outside any frame (diagnostics, never content)

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and not ended (a close now truncates it)."""
        return self._in_frame or self._skipping

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def head(self) -> bytes:
        """The start of the unfinished frame (for answering a sender that went silent)."""
        return bytes(self._buf[:HEAD_BYTES])

    def feed(self, data: bytes) -> list[Frame | Discarded]:
        events: list[Frame | Discarded] = []
        i, n = 0, len(data)
        while i < n:
            if self._skipping:
                end = _first(data, i)
                if end < 0:
                    break
                self._skipping = False
                if data[end : end + 1] == VT:
                    self._start()
                i = end + 1
            elif not self._in_frame:
                start = data.find(VT, i)
                if start < 0:
                    self.junk_bytes += n - i
                    break
                self.junk_bytes += start - i
                self._start()
                i = start + 1
            else:
                end = _first(data, i)
                stop = n if end < 0 else end
                if len(self._buf) + (stop - i) > self.max_size:
                    events.append(Discarded("oversized", self._head_with(data[i:stop])))
                    self._buf.clear()
                    self._in_frame = False
                    self._skipping = True
                    continue  # the skipping branch finds the same end again
                self._buf += data[i:stop]
                if end < 0:
                    break
                if data[end : end + 1] == VT:
                    events.append(Discarded("truncated", self.head()))
                    self._start()
                else:
                    events.append(Frame(bytes(self._buf)))
                    self._buf.clear()
                    self._in_frame = False
                i = end + 1
        return events

    def _start(self) -> None:
        self._buf.clear()
        self._in_frame = True

    def _head_with(self, more: bytes) -> bytes:
        head = bytes(self._buf[:HEAD_BYTES])
        return head + more[: HEAD_BYTES - len(head)]


def _first(data: bytes, start: int) -> int:
    """Index of the first ``<FS>`` or ``<VT>`` at or after ``start``, or -1."""
    fs = data.find(FS, start)
    vt = data.find(VT, start, fs if fs >= 0 else len(data))
    return vt if vt >= 0 else fs
