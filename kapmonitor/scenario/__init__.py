"""Scenarios: a clinic's protocol, tested like code (docs/scenarios.md).

``format`` reads and checks a scenario file, ``steps`` holds one function per step kind,
``expect`` one per expectation, and ``runner`` replays a scenario through the store and domain
code the bedside window uses, in a throw-away database. Qt-free: the command line and the test
suite run it without a screen.
"""
