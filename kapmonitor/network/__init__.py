"""The clinic network: each laptop's committed rows flow to a central PostgreSQL archive.

Qt-free (checked by import-linter): it may use the store and the domain, never the window or the
reports. ``psycopg`` is imported only inside the functions that talk to the server, so the command
line's parser (built at every start, the window's included) never loads it. See docs/network.md.
"""
