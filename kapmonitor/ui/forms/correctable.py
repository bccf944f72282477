"""Which entry form corrects which kind of row.

Both rooms correct entries (the bedside during the session, the review room as an amendment), so
the table → form map lives here, beside the forms, rather than in either room."""

from __future__ import annotations

from kapmonitor.ui.forms.adverse_event_form import AdverseEventForm
from kapmonitor.ui.forms.dose_form import DoseForm
from kapmonitor.ui.forms.form_base import EntryForm
from kapmonitor.ui.forms.intervention_form import InterventionForm
from kapmonitor.ui.forms.observation_form import ObservationForm
from kapmonitor.ui.forms.vitals_form import VitalsForm

__all__ = ["CORRECTABLE"]

CORRECTABLE: dict[str, type[EntryForm]] = {
    "vitals": VitalsForm,
    "doses": DoseForm,
    "observations": ObservationForm,
    "adverse_events": AdverseEventForm,
    "interventions": InterventionForm,
}
