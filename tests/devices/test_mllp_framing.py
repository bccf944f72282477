"""MLLP framing: whatever bytes arrive, in whatever chunks, the decoder returns exactly the frames
that were sent whole, reports the ones that never will be, and keeps its memory bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.devices.mllp import CR, FS, VT, Discarded, Frame, MllpDecoder, frame

# Payloads never contain the framing bytes (HL7 text cannot); junk between frames has no <VT>.
payloads = st.binary(max_size=300).map(lambda b: b.replace(VT, b"").replace(FS, b""))
junk = st.binary(max_size=40).map(lambda b: b.replace(VT, b""))


def feed_in_chunks(decoder: MllpDecoder, data: bytes, cuts: list[int]) -> list:
    events = []
    points = sorted({c % (len(data) + 1) for c in cuts})
    last = 0
    for point in [*points, len(data)]:
        events += decoder.feed(data[last:point])
        last = point
    return events


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(junk, payloads), max_size=8), st.lists(st.integers(0, 10_000)))
def test_frames_come_out_whole_whatever_the_chunks_and_junk(pairs, cuts) -> None:
    wire = b"".join(j + frame(p) for j, p in pairs)
    events = feed_in_chunks(MllpDecoder(), wire, cuts)
    assert events == [Frame(p) for _, p in pairs]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 10_000)))
def test_arbitrary_bytes_never_raise_and_stay_bounded(data, cuts) -> None:
    decoder = MllpDecoder(max_size=256)
    events = feed_in_chunks(decoder, data, cuts)
    assert decoder.buffered <= 256
    for event in events:
        if isinstance(event, Frame):
            assert len(event.payload) <= 256
            assert VT not in event.payload and FS not in event.payload


@settings(deadline=None)
@given(payloads, payloads, st.lists(st.integers(0, 10_000)))
def test_a_frame_cut_short_by_a_new_start_is_reported_and_the_next_one_kept(a, b, cuts) -> None:
    wire = VT + a + frame(b)  # the first frame never got its <FS>
    events = feed_in_chunks(MllpDecoder(), wire, cuts)
    assert events == [Discarded("truncated", a[:4096]), Frame(b)]


@settings(deadline=None)
@given(st.integers(1, 3000), payloads, st.lists(st.integers(0, 10_000), max_size=20))
def test_oversized_frames_are_refused_once_and_the_stream_resynchronises(extra, b, cuts) -> None:
    limit = 1000
    big = b"MSH|^~\\&|" + b"x" * (limit + extra)
    events = feed_in_chunks(MllpDecoder(max_size=limit), frame(big) + frame(b), cuts)
    assert len(events) == 2
    assert isinstance(events[0], Discarded) and events[0].reason == "oversized"
    assert events[0].head.startswith(b"MSH|") or len(events[0].head) < 4
    assert events[1] == Frame(b)


def test_the_limit_is_inclusive_at_one_mebibyte() -> None:
    decoder = MllpDecoder()
    exact = b"a" * (1024 * 1024)
    assert decoder.feed(frame(exact)) == [Frame(exact)]
    events = decoder.feed(frame(exact + b"a"))
    assert [type(e) for e in events] == [Discarded]
    assert decoder.buffered == 0


def test_a_missing_cr_after_fs_only_costs_a_byte_of_junk() -> None:
    decoder = MllpDecoder()
    events = decoder.feed(VT + b"one" + FS + VT + b"two" + FS + CR)
    assert events == [Frame(b"one"), Frame(b"two")]


def test_junk_before_a_frame_is_dropped_and_counted() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"GET / HTTP/1.1\r\n\r\n") == []
    assert decoder.junk_bytes == 18
    assert decoder.feed(frame(b"MSH|x")) == [Frame(b"MSH|x")]


def test_an_unfinished_frame_is_visible_for_a_timeout_answer() -> None:
    decoder = MllpDecoder()
    decoder.feed(VT + b"MSH|^~\\&|A")
    assert decoder.in_frame
    assert decoder.head() == b"MSH|^~\\&|A"
