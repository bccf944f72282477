"""PyInstaller's entry script (it needs a file, not a console-script entry point)."""

from kapmonitor.cli import main

raise SystemExit(main())
