#!/usr/bin/env bash
# Build the benchmark's start-up floor (a bare PySide6 window) into dist/bare-window/.
# Then: kapmonitor bench --frozen dist/kapmonitor/kapmonitor --bare dist/bare-window/bare-window
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/bare packaging/bare_window.spec
echo "bare window: $ROOT/dist/bare-window/bare-window ($(du -sh dist/bare-window | cut -f1))"
