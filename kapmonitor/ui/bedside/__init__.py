"""The bedside room: the session window the attending therapists record in.

It never imports the review room; the application wires the two together (``ui/app.py``)."""
