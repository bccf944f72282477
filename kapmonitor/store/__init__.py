"""Durable storage: one SQLite file through sqlite-utils. No Qt here."""
