#!/usr/bin/env bash
# One command for newcomers: system packages, virtualenv, install, then run / test / build.
#
#   bash packaging/dev.sh run [kapmonitor args...]   # open the window (default local database)
#   bash packaging/dev.sh test [pytest args...]      # ruff + the whole test suite
#   bash packaging/dev.sh build                      # PyInstaller bundle + archive in dist/
#
# Environment:
#   BASE_PYTHON   interpreter used to create .venv (default: python3, must be >= 3.11)
#   VENV          virtualenv folder (default: .venv in the repository)
#   KAPMONITOR_SKIP_SYSTEM_PACKAGES=1   do not check or install Debian packages
#
# The Debian packages needed (Qt's runtime libraries, Xvfb, poppler-utils, binutils) are listed
# once, in packaging/debian-packages.txt; .ci/run reads the same file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PACKAGES_FILE="$ROOT/packaging/debian-packages.txt"
BASE_PYTHON="${BASE_PYTHON:-python3}"
VENV="${VENV:-$ROOT/.venv}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 64
}

# The package names from debian-packages.txt, without comments or blank lines.
debian_packages() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$PACKAGES_FILE"
}

ensure_system_packages() {
    if [[ "${KAPMONITOR_SKIP_SYSTEM_PACKAGES:-0}" == 1 ]]; then
        say "skipping the system package check (KAPMONITOR_SKIP_SYSTEM_PACKAGES=1)"
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian-like system (no dpkg): skipping the system package check;"
        say "install the equivalents of packaging/debian-packages.txt yourself"
        return 0
    fi
    local missing=() pkg
    while IFS= read -r pkg; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done < <(debian_packages)
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    say "missing Debian packages: ${missing[*]}"
    local install=(apt-get install -y -qq "${missing[@]}")
    if [[ "$(id -u)" == 0 ]]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${install[@]}"
    elif command -v sudo >/dev/null 2>&1; then
        say "installing them with sudo"
        sudo apt-get update -qq
        sudo env DEBIAN_FRONTEND=noninteractive "${install[@]}"
    else
        printf 'dev.sh: install them as root, then run me again:\n' >&2
        printf '    apt-get update && apt-get install -y %s\n' "${missing[*]}" >&2
        exit 1
    fi
}

ensure_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        command -v "$BASE_PYTHON" >/dev/null 2>&1 || die "$BASE_PYTHON not found (set BASE_PYTHON)"
        "$BASE_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || die "KAP Monitor needs Python >= 3.11; $BASE_PYTHON is $("$BASE_PYTHON" -V 2>&1)"
        say "creating the virtualenv $VENV with $("$BASE_PYTHON" -V 2>&1)"
        say "(the first install downloads Qt, numpy and friends: over 100 MB)"
        "$BASE_PYTHON" -m venv "$VENV" \
            || die "could not create $VENV (on Debian's own python: apt-get install python3-venv)"
    fi
    "$VENV/bin/python" -c 'pass' || die "$VENV is broken: delete it and run me again"
}

# pip install -e ".[extras]" into the venv (pip upgraded first).
# If pip fails (offline?) but the project is already installed, carry on with a warning.
install_project() {
    local spec="$1"
    say "installing $spec into $VENV"
    if "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip \
        && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec"; then
        return 0
    fi
    if [[ -x "$VENV/bin/kapmonitor" ]]; then
        say "WARNING: pip failed (offline?); using what is already installed in $VENV"
        return 0
    fi
    die "pip could not install $spec into $VENV"
}

cmd_run() {
    ensure_system_packages
    ensure_venv
    install_project .
    if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" && -z "${QT_QPA_PLATFORM:-}" ]]; then
        # No screen: kapmonitor refuses to open its window with a plain message and exit 3
        # (rather than Qt's abort, which blames a library that is installed); the commands
        # that need no screen (demo, sessions, export...) still run.
        local rc=0
        "$VENV/bin/kapmonitor" "$@" || rc=$?
        if ((rc == 3)); then
            printf 'dev.sh: without a desktop, try: xvfb-run -a bash packaging/dev.sh run\n' >&2
        fi
        exit "$rc"
    fi
    exec "$VENV/bin/kapmonitor" "$@"
}

cmd_test() {
    ensure_system_packages
    ensure_venv
    install_project '.[test]'

    say "ruff check . && ruff format --check ."
    local ruff_rc=0
    "$VENV/bin/ruff" check . || ruff_rc=$?
    "$VENV/bin/ruff" format --check . || ruff_rc=$?
    say "lint-imports (the layers in pyproject.toml)"
    "$VENV/bin/lint-imports" || ruff_rc=$?

    # The suite runs on every core (at most four workers: each starts its own throw-away
    # PostgreSQL and Qt): on a 2-core machine it takes about half the time of one process.
    # Arguments given after `test` come after these, so `-n 0` runs it in one process.
    say "pytest -n auto --maxprocesses=4 $*"
    local rc=0
    "$VENV/bin/python" -m pytest -n auto --maxprocesses=4 "$@" || rc=$?
    if ((rc == 5)); then
        printf 'dev.sh: pytest collected no tests (exit 5): treated as a failure.\n' >&2
        exit 5
    fi
    if ((rc != 0)); then
        exit "$rc"
    fi
    if ((ruff_rc != 0)); then
        printf 'dev.sh: the tests passed but ruff or lint-imports found problems (exit %s).\n' "$ruff_rc" >&2
        exit 1
    fi
    say "ruff and pytest passed"
}

cmd_build() {
    ensure_system_packages
    ensure_venv
    install_project '.[package]'
    PYTHON="$VENV/bin/python" bash "$ROOT/packaging/build.sh"
}

case "${1:-}" in
    run) shift; cmd_run "$@" ;;
    test) shift; cmd_test "$@" ;;
    build) shift; (($# == 0)) || die "build takes no arguments"; cmd_build ;;
    -h | --help | help | "") usage ;;
    *) printf 'dev.sh: unknown command %q\n' "$1" >&2; usage ;;
esac
