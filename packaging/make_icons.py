"""Draw the app icon at every size the platforms want, into ``resources/icons/``.

Run from the repository root: ``python packaging/make_icons.py``. The drawing is code, so the
icon can be regenerated at any size without a design tool: a rounded tile of H&E pink with a
2 x 2 grid of coloured patches (the four classes) over a lens ring.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
CLASS_COLORS = ("#2ca02c", "#f2c500", "#d62728", "#1f77b4")


def draw(size: int = 1024) -> Image.Image:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    s = size / 1024
    d.rounded_rectangle((40 * s, 40 * s, 984 * s, 984 * s), radius=200 * s, fill="#f4d6e4", outline="#7a2e5c", width=int(28 * s))
    # Tissue-like blobs in eosin and haematoxylin.
    for (cx, cy, r, col) in ((330, 360, 150, "#e48cb8"), (650, 330, 120, "#c86ca0"), (420, 690, 170, "#d67aaa"),
                             (700, 680, 140, "#8a4c9e")):
        d.ellipse(((cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s), fill=col)
    # The classifier's 2 x 2 tile grid in the class colours.
    cell = 230
    x0, y0 = 282, 282
    for i, col in enumerate(CLASS_COLORS):
        x = x0 + (i % 2) * (cell + 20)
        y = y0 + (i // 2) * (cell + 20)
        d.rounded_rectangle((x * s, y * s, (x + cell) * s, (y + cell) * s), radius=30 * s, outline=col, width=int(34 * s))
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    big = draw()
    for n in SIZES:
        big.resize((n, n), Image.Resampling.LANCZOS).save(OUT / f"chaoyang-desktop-{n}.png")
    big.resize((256, 256), Image.Resampling.LANCZOS).save(
        OUT / "chaoyang-desktop.ico", sizes=[(n, n) for n in (16, 24, 32, 48, 64, 128, 256)])
    big.resize((512, 512), Image.Resampling.LANCZOS).save(OUT / "chaoyang-desktop.icns")


if __name__ == "__main__":
    main()
