"""How a typed user name is compared: one rule for sign-in, lock-out and key slots.

``SuPeR``, ``super`` and a full-width ``ｓｕｐｅｒ`` are the same account, so a lock-out on one
holds for all of them (NFKC folds compatibility forms, ``casefold`` folds case beyond ASCII).
"""

from __future__ import annotations

import unicodedata


def normalize_username(name: str) -> str:
    """The comparison form of a user name: NFKC, case-folded, outer spaces removed."""
    return unicodedata.normalize("NFKC", name).casefold().strip()
