"""KAP Monitor: a bedside log for ketamine-assisted psychotherapy sessions."""

__version__ = "0.1.0"
APP_NAME = "KAP Monitor"
APP_SLUG = "kapmonitor"
