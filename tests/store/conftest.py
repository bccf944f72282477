"""Fixtures shared by the store tests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from tests.factories import T0, open_store


@pytest.fixture
def demo_path(tmp_path: Path) -> Path:
    path = tmp_path / "demo.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(3)):
        pass
    store.close()
    return path
