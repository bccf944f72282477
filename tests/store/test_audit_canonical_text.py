"""The audit trail's hashed text, built fast, is the text the chain rule names.

``seal`` hashes every row it seals and MACs every entry, so it builds both texts without a
``json.dumps`` per call (a made-once encoder; an entry's text from a head and a tail around the
row's id and hash). ``verify`` and any outside checker recompute them with plain
``json.dumps``: these properties hold the two to the same characters for any values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapmonitor.store import audit

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
ROWS = st.dictionaries(st.text(), JSON_SCALARS, max_size=12)
HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


def plain(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@given(ROWS)
def test_canonical_is_plain_sorted_json(row: dict[str, Any]) -> None:
    assert audit.canonical(row) == plain(row)


@given(
    actor=st.text(),
    action=st.text(),
    at=st.text(),
    detail=st.text(),
    owner=st.none() | st.text(),
    table=st.text(),
    rowid=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    digest=HEX,
)
def test_an_entry_text_built_from_parts_is_the_canonical_text_of_its_fields(
    actor: str,
    action: str,
    at: str,
    detail: str,
    owner: str | None,
    table: str,
    rowid: int,
    digest: str,
) -> None:
    common = {"at": at, "actor": actor, "action": action, "detail": detail}
    fields = {
        **common,
        "session_id": owner,
        "table_name": table,
        "row_id": rowid,
        "row_hash": digest,
    }
    texts = audit._EntryTexts({**common, "session_id": None, "table_name": None})
    assert texts.text(owner, table, rowid, digest) == plain(fields)
    assert texts.text(owner, table, rowid, digest) == plain(fields)  # the kept tail too


@pytest.mark.parametrize(("rowid", "digest"), [(True, "a" * 64), (1.0, "a" * 64), (1, "A" * 64)])
def test_an_entry_text_refuses_what_json_would_write_differently(rowid: Any, digest: str) -> None:
    """A bool or float id, or an upper-case hash, would print differently: refused."""
    texts = audit._EntryTexts({"at": "t", "actor": "a", "action": "x", "detail": "{}"})
    with pytest.raises(ValueError, match="integer row id"):
        texts.text("S", "vitals", rowid, digest)
