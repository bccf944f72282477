"""The start-up floor for ``kapmonitor bench``: a bare PySide6 window, frozen the same way.

It prints ``painted`` on its first paint and quits, exactly like ``kapmonitor
--startup-probe``, so the two start-up times differ only by what KAP Monitor itself does.
"""

import sys

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel


def main() -> int:
    app = QApplication(sys.argv[:1])
    window = QLabel("bare window")
    window.resize(1366, 820)

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and watched is window:
                print("painted", flush=True)
                window.removeEventFilter(self)
                QTimer.singleShot(0, app.quit)
            return False

    watcher = FirstPaint()
    window.installEventFilter(watcher)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
