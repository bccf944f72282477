"""Draw the KAP Monitor app icon with QtGui, offscreen, and save it under resources/icons/.

    python packaging/make_icon.py            # writes kapmonitor.png (256 px) and kapmonitor.ico

The design is calm and legible at 16 px: a deep-teal rounded square, a white heartbeat/trend
line across it and a small pale crescent moon (the quiet of a dosing session). Every size is
drawn natively rather than scaled down, so the line stays at least ~2 px wide in a 16 px icon.

The .ico holds 16, 24, 32, 48, 64, 128 and 256 px images, each stored as PNG (valid in ICO
files since Windows Vista). Qt's own ICO writer stores only one image per file, so the
container is assembled here by hand; Qt reads it back as a check.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtGui

REPO_ROOT = Path(__file__).resolve().parent.parent
ICON_DIR = REPO_ROOT / "resources" / "icons"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
DESIGN = 256.0  # every coordinate below is in a 256 x 256 design space

TEAL_TOP = QtGui.QColor("#17676b")
TEAL_BOTTOM = QtGui.QColor("#0b4347")
LINE = QtGui.QColor("#ffffff")
MOON = QtGui.QColor("#f3ecd2")

# Baseline, a small P wave, the QRS spike, a gentle T wave, baseline again.
TRACE = (
    (34, 168),
    (78, 168),
    (90, 154),
    (102, 168),
    (114, 168),
    (130, 206),
    (152, 96),
    (170, 184),
    (182, 168),
    (222, 168),
)
# At 24 px and below the P and T waves blur into noise: keep only the spike.
TRACE_SMALL = ((24, 180), (80, 180), (104, 220), (130, 100), (156, 180), (232, 180))


def render(size: int) -> QtGui.QImage:
    """The icon drawn natively at ``size`` x ``size`` pixels, with a transparent surround."""
    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    try:
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        scale = size / DESIGN
        painter.scale(scale, scale)

        # Small sizes use the whole square: a margin would be a blurry half pixel.
        margin = 8.0 if size >= 48 else 0.0
        tile = QtCore.QRectF(margin, margin, DESIGN - 2 * margin, DESIGN - 2 * margin)
        gradient = QtGui.QLinearGradient(tile.topLeft(), tile.bottomLeft())
        gradient.setColorAt(0.0, TEAL_TOP)
        gradient.setColorAt(1.0, TEAL_BOTTOM)
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        painter.setBrush(QtGui.QBrush(gradient))
        painter.drawRoundedRect(tile, 52.0, 52.0)

        # The moon: a disc minus a disc shifted up-left leaves a crescent lit on the right.
        small = size <= 24
        grow = 1.25 if small else 1.0
        centre = QtCore.QPointF(196.0, 58.0) if small else QtCore.QPointF(188.0, 66.0)
        moon = QtGui.QPainterPath()
        moon.addEllipse(centre, 30.0 * grow, 30.0 * grow)
        shadow = QtGui.QPainterPath()
        shadow.addEllipse(centre - QtCore.QPointF(16.0, 10.0) * grow, 27.0 * grow, 27.0 * grow)
        painter.setBrush(MOON)
        painter.drawPath(moon.subtracted(shadow))

        # The trace never gets thinner than 2 device pixels.
        width = max(18.0, 2.0 / scale)
        pen = QtGui.QPen(LINE, width)
        pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(QtCore.Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        trace = TRACE_SMALL if small else TRACE
        painter.drawPolyline(QtGui.QPolygonF([QtCore.QPointF(x, y) for x, y in trace]))
    finally:
        painter.end()
    return image


def png_bytes(image: QtGui.QImage) -> bytes:
    buffer = QtCore.QBuffer()
    buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError("Qt could not encode a PNG")
    return bytes(buffer.data())


def ico_bytes(images: list[QtGui.QImage]) -> bytes:
    """An ICO container holding each image as PNG (ICONDIR, ICONDIRENTRY[n], payloads)."""
    payloads = [png_bytes(image) for image in images]
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries = b""
    for image, payload in zip(images, payloads, strict=True):
        side = image.width()
        dim = 0 if side >= 256 else side  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(payload), offset)
        offset += len(payload)
    return header + entries + b"".join(payloads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ICON_DIR, help="output folder")
    args = parser.parse_args(argv)

    _app = QtGui.QGuiApplication.instance() or QtGui.QGuiApplication(sys.argv[:1])
    args.out.mkdir(parents=True, exist_ok=True)

    png_path = args.out / "kapmonitor.png"
    if not render(256).save(str(png_path), "PNG"):
        raise SystemExit(f"make_icon: could not write {png_path}")

    ico_path = args.out / "kapmonitor.ico"
    ico_path.write_bytes(ico_bytes([render(size) for size in ICO_SIZES]))

    reader = QtGui.QImageReader(str(ico_path))
    if reader.canRead():
        print(f"{ico_path}: Qt reads {reader.imageCount()} images")
    print(f"wrote {png_path} ({png_path.stat().st_size} bytes)")
    print(f"wrote {ico_path} ({ico_path.stat().st_size} bytes, sizes {list(ICO_SIZES)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
