"""The entry and sign-in dialogs, each on the one refusal-handling base in ``form_base``.

A form validates through the domain and saves through a callback its room gives it; it never
opens a window of its own room. Forms may import widgets, never the bedside or review rooms."""
