"""Durable storage: one SQLite file through sqlite-utils. No Qt here."""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType


class _SqliteUtilsWithoutNumpy:
    """Loads sqlite-utils, when something first imports it, without numpy and pandas.

    sqlite-utils imports both when installed, only to map their scalar types to column types when
    it creates a table from Python values. The store never writes either, and numpy alone is about
    80 ms of every start before the first paint (pyqtgraph still loads it when a chart is first
    drawn). Both are hidden only while sqlite-utils' own modules run, and only when nothing has
    loaded them already; a finder (rather than importing sqlite-utils here) keeps importing the
    store's light modules (errors, db_file) from loading sqlite-utils at all. (The finder and
    loader protocols are followed without subclassing importlib.abc, which costs 3 ms to import.)
    """

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "sqlite_utils":
            return None
        sys.meta_path.remove(self)  # once: later imports find the loaded module
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        real = spec.loader

        class HidingLoader:  # the loader protocol (not importlib.abc: 3 ms more at start)
            def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
                return real.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                hidden = [n for n in ("numpy", "pandas") if n not in sys.modules]
                for n in hidden:
                    sys.modules[n] = None  # type: ignore[assignment]  # "import numpy" fails fast
                try:
                    real.exec_module(module)
                finally:
                    for n in hidden:
                        if sys.modules.get(n) is None:
                            del sys.modules[n]

        spec.loader = HidingLoader()
        return spec


if "sqlite_utils" not in sys.modules:
    sys.meta_path.insert(0, _SqliteUtilsWithoutNumpy())
