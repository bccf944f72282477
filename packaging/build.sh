#!/usr/bin/env bash
# Build the KAP Monitor onedir bundle and a versioned archive of it.
#
#   bash packaging/build.sh                 # uses .venv/bin/python
#   PYTHON=/path/to/python bash packaging/build.sh
#
# Output: dist/kapmonitor/ (the onedir app; run dist/kapmonitor/kapmonitor) and
#         dist/kapmonitor-<version>-<platform>-<arch>.tar.gz
# The Python must have the project and PyInstaller installed: pip install -e '.[package]'
# (bash packaging/dev.sh build does all of that).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-.venv/bin/python}"
if ! "$PYTHON" -c 'import PyInstaller' 2>/dev/null; then
    echo "build.sh: PyInstaller is not importable by $PYTHON." >&2
    echo "          Install it with: $PYTHON -m pip install -e '.[package]'" >&2
    exit 1
fi

version="$("$PYTHON" -c 'import kapmonitor; print(kapmonitor.__version__)')"
platform="$("$PYTHON" -c 'import sys; print({"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform))')"
arch="$("$PYTHON" -c 'import platform; print(platform.machine().lower() or "unknown")')"
archive="dist/kapmonitor-${version}-${platform}-${arch}.tar.gz"

echo "==> PyInstaller: packaging/kapmonitor.spec -> dist/kapmonitor (version $version)"
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build packaging/kapmonitor.spec

if [[ ! -x dist/kapmonitor/kapmonitor && ! -f dist/kapmonitor/kapmonitor.exe ]]; then
    echo "build.sh: PyInstaller finished but dist/kapmonitor/kapmonitor is missing." >&2
    exit 1
fi

echo "==> archive: $archive"
rm -f "$archive"
tar -C dist -czf "$archive" kapmonitor

echo "archive: $ROOT/$archive ($(du -h "$archive" | cut -f1))"
echo "onedir size: $(du -sh dist/kapmonitor | cut -f1) (dist/kapmonitor)"
