"""The flags that keep a reading from F (kapmonitor/domain/device_flags.py) are the device
layer's own flag names, read from the stored JSON; an unreadable column counts as flagged."""

from __future__ import annotations

from kapmonitor.devices.reading import ReadingFlag
from kapmonitor.domain.device_flags import BLOCKING_FLAGS, blocking_flags, flag_caption


def test_every_blocking_flag_is_a_reading_flag_and_corrected_is_not_blocking() -> None:
    names = {str(f) for f in ReadingFlag}
    assert set(BLOCKING_FLAGS) <= names
    assert names - set(BLOCKING_FLAGS) == {"corrected"}


def test_blocking_flags_are_read_from_the_stored_column() -> None:
    assert blocking_flags("[]") == () and blocking_flags(None) == ()
    assert blocking_flags('["corrected"]') == ()
    assert blocking_flags('["artefact", "corrected"]') == ("artefact",)
    assert blocking_flags("not json") == ("artefact",)  # nobody can say it was not flagged
    assert blocking_flags('{"a": 1}') == ("artefact",)


def test_the_caption_names_probe_off_first() -> None:
    assert flag_caption(("artefact", "probe_off")) == "probe off"
    assert flag_caption(("artefact",)) == "device: artefact"
    assert flag_caption(()) == ""
