"""A refused entry, field by field: the one exception every layer raises and every form shows.

Kept apart from :mod:`kapmonitor.domain.validation` (and its plausibility ranges) so that what
only needs to catch or show a refusal (the command line, the dialog base) loads nothing more:
both are on the path to the unlock dialog's first paint.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ValidationError(ValueError):
    """One or more fields were refused. ``errors`` keeps each field's reason for the form."""

    def __init__(self, errors: list[FieldError] | FieldError) -> None:
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)
        super().__init__("; ".join(e.message for e in self.errors))

    def for_field(self, name: str) -> str | None:
        return next((e.message for e in self.errors if e.field == name), None)
