"""Allow ``python -m kapmonitor``; PyInstaller also freezes this entry point."""

import sys

from kapmonitor.cli import main

if __name__ == "__main__":
    sys.exit(main())
