"""Generate every image the sample collections refer to, deterministically.

No image is committed: each one is drawn here from its entry in ``IMAGES``
(size, subject, seed derived from its path), so the repository stays small and
the files are identical on every machine. Drawings are simple but recognisable
(a Noh mask, a kimono, a Kutani plate, a manuscript in vertical columns, a
folding screen, a handscroll...) so the public site and the viewers look like a
museum when developing. Files that already exist with the expected content are
left alone; new files are written atomically (temporary file, then rename).

Usage: ``python collections_data/make_images.py [--force] [--quiet]``
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import random
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
GENERATED = "images/generated"
# Bump when a drawing changes, so existing files are redrawn.
DRAWING_VERSION = 1


@dataclass(frozen=True)
class ImageSpec:
    """One generated file: ``path`` is relative to ``collections_data/``."""

    path: str
    width: int
    height: int
    kind: str

    @property
    def seed(self) -> int:
        return zlib.crc32(self.path.encode("utf-8"))

    def key(self) -> str:
        """Changes whenever the bytes we would write change."""
        return f"v{DRAWING_VERSION}:{self.width}x{self.height}:{self.kind}"


def _specs(folder: str, rows: list[tuple[str, int, int, str]]) -> list[ImageSpec]:
    return [ImageSpec(f"{folder}/{GENERATED}/{name}", w, h, kind) for name, w, h, kind in rows]


# Every image referenced by a sample record or institution.toml, and nothing else.
IMAGES: tuple[ImageSpec, ...] = tuple(
    _specs(
        "noh-museum",
        [
            ("logo.png", 160, 160, "logo"),
            ("N-1_front.jpg", 900, 1200, "mask"),
            ("N-1_back.jpg", 900, 1200, "mask_back"),
            ("N-2.jpg", 900, 1200, "mask"),
            ("N-3.jpg", 900, 1200, "mask_hannya"),
            ("N-4.jpg", 900, 1200, "mask"),
            ("N-5.jpg", 900, 1200, "mask_old"),
            ("N-6.jpg", 900, 1200, "mask"),
            ("N-7_front.jpg", 1400, 1200, "costume"),
            ("N-7_detail.jpg", 1000, 1000, "textile"),
            ("N-8.jpg", 1400, 1200, "costume"),
            ("N-9.jpg", 1400, 1200, "costume"),
            ("N-10.jpg", 1200, 900, "fan"),
            ("N-11.jpg", 800, 1400, "manuscript"),
            ("N-12_front.jpg", 900, 1200, "mask_hannya"),
            ("N-12_side.jpg", 900, 1200, "mask_back"),
            ("N-13.jpg", 1600, 1000, "photo"),
            ("N-14.jpg", 1200, 1200, "textile"),
        ],
    )
    + _specs(
        "craft-museum",
        [
            ("logo.png", 200, 120, "logo"),
            ("K-0001.jpg", 1400, 1400, "plate"),
            ("K-0002.jpg", 1400, 1400, "plate"),
            ("K-0003.jpg", 1000, 1400, "vase"),
            ("K-0004_1.jpg", 1000, 1400, "vase"),
            ("K-0004_2.jpg", 1000, 1400, "vase"),
            ("K-0005.jpg", 1400, 1000, "bowl"),
            ("K-0006.jpg", 1400, 1000, "bowl"),
            ("K-0007.jpg", 1400, 1000, "lacquer"),
            ("K-0008.jpg", 1200, 1200, "lacquer"),
            ("K-0009.jpg", 1000, 1400, "gold"),
            ("K-0010.jpg", 1400, 1000, "gold"),
            ("K-0011.jpg", 1000, 1400, "vase"),
            ("K-0012_lid.jpg", 1200, 1200, "lacquer"),
            ("K-0012_box.jpg", 1400, 1000, "lacquer"),
            ("K-0013.jpg", 1200, 1200, "plate"),
            ("K-0014.jpg", 1400, 1000, "textile"),
        ],
    )
    + _specs(
        "literature-hall",
        [
            ("logo.png", 160, 160, "logo"),
            ("L-001.jpg", 1000, 1400, "manuscript"),
            ("L-002.jpg", 1000, 1400, "manuscript"),
            *[(f"L-003_p{n:02d}.jpg", 700, 1000, "book_page") for n in range(1, 9)],
            ("L-004_1.jpg", 1400, 900, "letter"),
            ("L-004_2.jpg", 700, 1000, "envelope"),
            ("L-005.jpg", 1400, 900, "letter"),
            ("L-006.jpg", 800, 1100, "photo"),
            ("L-007.jpg", 1000, 1400, "manuscript"),
            ("L-008.jpg", 700, 1000, "book_cover"),
            ("L-009.jpg", 1400, 900, "letter"),
            ("L-010.jpg", 1000, 1400, "manuscript"),
            ("L-011.jpg", 800, 1100, "photo"),
            ("L-012.png", 900, 600, "postcard"),
            ("L-013.jpg", 700, 1000, "book_cover"),
        ],
    )
    + _specs(
        "city-archives",
        [
            ("logo.png", 200, 120, "logo"),
            ("A-map-001.jpg", 2000, 1500, "map"),
            ("A-map-002.jpg", 1800, 1800, "map"),
            ("A-map-003.jpg", 2000, 1400, "map"),
            ("A-byobu-001_right.jpg", 2400, 1000, "screen"),
            ("A-byobu-001_left.jpg", 2400, 1000, "screen"),
            ("A-scroll-001.jpg", 8000, 600, "scroll"),
            ("A-doc-001.jpg", 1400, 1000, "letter"),
            ("A-doc-002.jpg", 1000, 1400, "manuscript"),
            ("A-photo-001.jpg", 1600, 1100, "photo"),
            ("A-photo-002.jpg", 1600, 1100, "photo"),
            ("A-photo-003.jpg", 1100, 1600, "photo"),
            ("A-poster-001.jpg", 900, 1300, "poster"),
            ("A-doc-003.tif", 900, 1200, "manuscript"),
        ],
    )
    + _specs(
        "folk-museum",
        [
            ("logo.png", 160, 160, "logo"),
            ("F-01.jpg", 1200, 1000, "bowl"),
            ("F-02.jpg", 1000, 1300, "textile"),
            ("F-03_1.jpg", 1200, 900, "tool"),
            ("F-03_2.jpg", 1200, 900, "tool"),
            ("F-04.jpg", 900, 1200, "doll"),
            ("F-05.jpg", 1200, 900, "tool"),
            ("F-06.jpg", 900, 1200, "doll"),
            ("F-07.jpg", 1200, 1200, "textile"),
            ("F-08.jpg", 1300, 900, "photo"),
            ("F-09.jpg", 1000, 1300, "poster"),
        ],
    )
)

# -- palettes -------------------------------------------------------------------------------

IVORY = (236, 226, 204)
PAPER = (231, 219, 190)
INK = (34, 30, 28)
GOLD = (201, 163, 72)
VERMILION = (196, 58, 38)
KUTANI = [(46, 110, 74), (214, 176, 40), (92, 60, 120), (36, 58, 110), (178, 52, 40)]
INDIGO = (38, 52, 92)


def _jitter(rng: random.Random, colour: tuple[int, int, int], amount: int) -> tuple:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)


def _texture(
    rng: random.Random, size: tuple[int, int], base: tuple, amount: int, grain: int = 6
) -> Image.Image:
    """A soft, paper- or wood-like surface: coarse random noise, enlarged and blurred."""
    w, h = size
    sw, sh = max(2, w // grain), max(2, h // grain)
    noise = Image.frombytes("L", (sw, sh), rng.randbytes(sw * sh)).resize((w, h), Image.BILINEAR)
    noise = noise.filter(ImageFilter.GaussianBlur(1.5))
    flat = Image.new("RGB", size, base)
    dark = Image.new("RGB", size, tuple(max(0, c - amount) for c in base))
    return Image.composite(flat, dark, noise)


def _gradient(size: tuple[int, int], top: tuple, bottom: tuple) -> Image.Image:
    w, h = size
    column = Image.new("RGB", (1, h))
    for y in range(h):
        t = y / max(1, h - 1)
        column.putpixel(
            (0, y), tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    return column.resize((w, h))


def _strokes(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    box: tuple[int, int, int, int],
    colour: tuple,
    column_width: int,
    density: float = 0.8,
) -> None:
    """Vertical columns of brush-like marks, right to left, like written Japanese."""
    x0, y0, x1, y1 = box
    x = x1 - column_width
    char = int(column_width * 0.8)
    while x >= x0:
        y = y0 + rng.randint(0, char)
        end = y1 - rng.randint(0, (y1 - y0) // 3)
        while y + char < end:
            if rng.random() < density:
                for _ in range(rng.randint(2, 5)):
                    ax, ay = x + rng.randint(0, char), y + rng.randint(0, char)
                    bx, by = x + rng.randint(0, char), y + rng.randint(0, char)
                    draw.line((ax, ay, bx, by), fill=colour, width=max(1, char // 9))
            y += int(char * 1.25)
        x -= int(column_width * 1.5)


def _scatter(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    size: tuple[int, int],
    colour: tuple,
    count: int,
    radius: int,
) -> None:
    w, h = size
    for _ in range(count):
        x, y, r = rng.randint(0, w), rng.randint(0, h), rng.randint(1, radius)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(rng, colour, 20))


# -- subjects -------------------------------------------------------------------------------


def draw_mask(rng: random.Random, size: tuple[int, int], variant: str = "") -> Image.Image:
    w, h = size
    img = _texture(rng, size, (40, 34, 44) if variant != "old" else (70, 50, 36), 25)
    d = ImageDraw.Draw(img)
    cx, cy, rx, ry = w // 2, h // 2, int(w * 0.3), int(h * 0.36)
    face = (216, 196, 150) if variant == "hannya" else _jitter(rng, IVORY, 8)
    if variant == "old":
        face = (186, 150, 104)
    d.ellipse((cx - rx - 6, cy - ry - 6, cx + rx + 6, cy + ry + 6), fill=(20, 16, 14))
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=face)
    if variant == "hannya":
        for side in (-1, 1):
            base = cx + side * rx // 2
            d.polygon(
                [
                    (base, cy - ry + 40),
                    (base + side * rx // 2, cy - ry - h // 8),
                    (base + side * rx // 5, cy - ry + 70),
                ],
                fill=GOLD,
            )
    # hairline parting and painted eyebrows high on the forehead (the Noh convention)
    for i in range(14):
        x = cx - rx // 2 + i * rx // 14
        d.line((cx, cy - ry + 4, x, cy - ry + ry // 3), fill=INK, width=3)
    for side in (-1, 1):
        ex = cx + side * rx // 2
        d.ellipse(
            (ex - rx // 6, cy - ry // 2, ex + rx // 6, cy - ry // 2 + ry // 10), fill=(60, 56, 60)
        )
        eye = GOLD if variant == "hannya" else INK
        d.ellipse((ex - rx // 7, cy - ry // 7, ex + rx // 7, cy), fill=eye)
        d.ellipse((ex - rx // 16, cy - ry // 10, ex + rx // 16, cy - ry // 40), fill=INK)
    mouth_w = rx // (1 if variant == "hannya" else 3)
    d.chord((cx - mouth_w, cy + ry // 3, cx + mouth_w, cy + ry // 2 + 20), 0, 180, fill=VERMILION)
    if variant in ("hannya", "old"):
        for _ in range(60 if variant == "old" else 20):
            x, y = cx + rng.randint(-rx, rx) // 2, cy + rng.randint(-ry, ry) // 2
            d.line((x, y, x + rng.randint(-30, 30), y + rng.randint(-8, 8)), fill=(120, 90, 60))
    return img.filter(ImageFilter.GaussianBlur(1))


def draw_mask_back(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """The carved inside of a mask: bare wood, chisel marks, an ink inscription."""
    w, h = size
    img = _texture(rng, size, (30, 28, 32), 10)
    d = ImageDraw.Draw(img)
    cx, cy, rx, ry = w // 2, h // 2, int(w * 0.3), int(h * 0.36)
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=(150, 108, 66))
    for _ in range(220):
        x, y = cx + rng.randint(-rx, rx) * 4 // 5, cy + rng.randint(-ry, ry) * 4 // 5
        d.arc((x - 20, y - 10, x + 20, y + 10), 200, 340, fill=(120, 84, 50), width=2)
    _strokes(d, rng, (cx - 30, cy - ry // 2, cx + 30, cy + ry // 2), INK, 40, 0.9)
    return img


def draw_costume(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A kosode/karaori on a stand: T-shaped silhouette filled with a repeat pattern."""
    w, h = size
    img = _gradient(size, (210, 206, 198), (160, 156, 150))
    ground = rng.choice([(130, 24, 40), (28, 46, 96), (36, 86, 60), (210, 180, 90)])
    robe = Image.new("RGB", size, ground)
    pattern = ImageDraw.Draw(robe)
    step = max(30, w // 18)
    motif = rng.choice(["uroko", "kikko", "circles"])
    for row, y in enumerate(range(0, h, step)):
        for x in range(-step, w + step, step):
            ox = x + (step // 2 if row % 2 else 0)
            if motif == "uroko":
                pattern.polygon(
                    [(ox, y + step), (ox + step // 2, y), (ox + step, y + step)], fill=GOLD
                )
            elif motif == "kikko":
                r = step // 2 - 3
                pts = [
                    (ox + r * math.cos(a), y + r * math.sin(a))
                    for a in (i * math.pi / 3 for i in range(6))
                ]
                pattern.polygon(pts, outline=GOLD, width=3)
            else:
                pattern.ellipse(
                    (ox + 4, y + 4, ox + step - 4, y + step - 4),
                    outline=rng.choice([GOLD, IVORY, VERMILION]),
                    width=4,
                )
    mask = Image.new("L", size, 0)
    m = ImageDraw.Draw(mask)
    top, sleeve = int(h * 0.12), int(h * 0.45)
    m.rectangle((int(w * 0.05), top, int(w * 0.95), sleeve), fill=255)
    m.rectangle((int(w * 0.3), top, int(w * 0.7), int(h * 0.95)), fill=255)
    m.polygon([(w // 2 - w // 14, top), (w // 2, top + h // 5), (w // 2 + w // 14, top)], fill=0)
    img.paste(robe, (0, 0), mask)
    ImageDraw.Draw(img).line((int(w * 0.02), top - 6, int(w * 0.98), top - 6), fill=INK, width=10)
    return img


def draw_textile(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _texture(rng, size, rng.choice([INDIGO, (120, 30, 40), (60, 70, 50)]), 30, grain=3)
    d = ImageDraw.Draw(img)
    step = max(24, w // 14)
    for y in range(0, h, step):
        for x in range(0, w, step):
            if rng.random() < 0.5:
                d.ellipse(
                    (x + 5, y + 5, x + step - 5, y + step - 5),
                    outline=_jitter(rng, IVORY, 15),
                    width=3,
                )
            else:
                d.rectangle(
                    (x + step // 3, y + step // 3, x + 2 * step // 3, y + 2 * step // 3),
                    fill=_jitter(rng, GOLD, 20),
                )
    return img


def draw_fan(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _texture(rng, size, (60, 44, 36), 20)
    d = ImageDraw.Draw(img)
    box = (w // 10, h // 6, w - w // 10, h * 2)
    d.pieslice(box, 200, 340, fill=GOLD)
    d.pieslice((w // 3, h * 2 // 3, w * 2 // 3, h + h // 3), 200, 340, fill=(60, 44, 36))
    _scatter(d, rng, (w, h // 2), (240, 240, 230), 30, 14)
    d.ellipse((w // 2 - w // 10, h // 4, w // 2 + w // 10, h // 4 + w // 5), fill=VERMILION)
    return img


def draw_plate(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Kutani ware: a large plate in the five colours, seen from above."""
    w, h = size
    img = _gradient(size, (70, 70, 74), (30, 30, 34))
    d = ImageDraw.Draw(img)
    cx, cy, r = w // 2, h // 2, int(min(w, h) * 0.44)
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(226, 222, 208))
    inner = int(r * 0.78)
    d.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=rng.choice(KUTANI[:2]))
    for i in range(12):
        a0 = i * 30
        d.pieslice((cx - r, cy - r, cx + r, cy + r), a0, a0 + 15, fill=KUTANI[i % 5])
    d.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=KUTANI[rng.randint(0, 1)])
    for _ in range(9):  # flowers and birds, loosely
        x, y = cx + rng.randint(-inner // 2, inner // 2), cy + rng.randint(-inner // 2, inner // 2)
        s = rng.randint(inner // 10, inner // 5)
        d.ellipse((x - s, y - s, x + s, y + s), fill=rng.choice(KUTANI), outline=INK, width=3)
    return img


def _vessel(
    rng: random.Random,
    size: tuple[int, int],
    profile: list[tuple[float, float]],
    bands: list[tuple],
) -> Image.Image:
    w, h = size
    img = _gradient(size, (200, 198, 192), (120, 118, 112))
    d = ImageDraw.Draw(img)
    cx = w // 2
    right = [(cx + px * w, py * h) for px, py in profile]
    left = [(cx - px * w, py * h) for px, py in reversed(profile)]
    d.polygon(right + left, fill=bands[0])
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon(right + left, fill=255)
    overlay = img.copy()
    od = ImageDraw.Draw(overlay)
    top, bottom = min(p[1] for p in right), max(p[1] for p in right)
    for i, colour in enumerate(bands[1:], start=1):
        y = top + (bottom - top) * i / (len(bands) + 1)
        od.rectangle((0, y, w, y + (bottom - top) / (len(bands) * 2)), fill=colour)
    img.paste(overlay, (0, 0), mask)
    d.ellipse((cx - w // 3, int(bottom) - 15, cx + w // 3, int(bottom) + 15), fill=(90, 88, 84))
    return img


def draw_vase(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    neck = rng.uniform(0.06, 0.1)
    profile = [(neck, 0.1), (neck, 0.22), (rng.uniform(0.25, 0.33), 0.5), (0.2, 0.82), (0.12, 0.88)]
    return _vessel(rng, size, profile, [rng.choice(KUTANI)] + rng.sample(KUTANI, 3))


def draw_bowl(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    profile = [(0.4, 0.3), (0.38, 0.45), (0.3, 0.62), (0.12, 0.72), (0.1, 0.76)]
    glaze = rng.choice([(80, 50, 36), (160, 120, 70), (40, 70, 60), (230, 226, 214)])
    return _vessel(rng, size, profile, [glaze, _jitter(rng, glaze, 40)])


def draw_lacquer(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Maki-e: black or red lacquer with sprinkled gold and a gold motif."""
    w, h = size
    img = _gradient(size, (90, 86, 80), (40, 38, 36))
    d = ImageDraw.Draw(img)
    body = rng.choice([(18, 14, 12), (120, 22, 18)])
    d.rounded_rectangle((w // 10, h // 6, w - w // 10, h - h // 8), radius=w // 30, fill=body)
    _scatter(d, rng, (w, h), GOLD, 900, 2)
    d.rounded_rectangle((0, 0, w // 10, h), radius=0, fill=(90, 86, 80))
    d.rectangle((w - w // 10, 0, w, h), fill=(60, 58, 54))
    for _ in range(6):  # autumn grasses in gold
        x = rng.randint(w // 5, w * 4 // 5)
        d.line((x, h - h // 5, x + rng.randint(-w // 8, w // 8), h // 3), fill=GOLD, width=6)
    d.ellipse((w * 3 // 5, h // 4, w * 3 // 5 + w // 8, h // 4 + w // 8), fill=(230, 200, 120))
    return img


def draw_gold(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Gold leaf: a grid of slightly different squares, as the leaves are laid."""
    w, h = size
    img = Image.new("RGB", size, (60, 40, 30))
    d = ImageDraw.Draw(img)
    leaf = max(40, w // 9)
    for y in range(h // 10, h - h // 10, leaf):
        for x in range(w // 10, w - w // 10, leaf):
            d.rectangle((x, y, x + leaf + 2, y + leaf + 2), fill=_jitter(rng, GOLD, 22))
    return img.filter(ImageFilter.GaussianBlur(0.8))


def draw_manuscript(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _texture(rng, size, PAPER, 22)
    d = ImageDraw.Draw(img)
    margin = w // 12
    col = max(18, w // 22)
    if rng.random() < 0.6:  # ruled manuscript paper (原稿用紙)
        for x in range(w - margin, margin, -col * 3 // 2):
            d.line((x, margin, x, h - margin), fill=(200, 120, 100), width=1)
    _strokes(d, rng, (margin, margin, w - margin, h - margin), INK, col)
    for _ in range(rng.randint(1, 4)):  # corrections in red
        x, y = rng.randint(margin, w - margin), rng.randint(margin, h - margin)
        d.line((x, y, x + col, y + col * 2), fill=VERMILION, width=3)
    return img


def draw_book_page(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _texture(rng, size, (226, 214, 182), 26)
    d = ImageDraw.Draw(img)
    d.rectangle((w // 10, h // 10, w - w // 10, h - h // 10), outline=(110, 90, 70), width=3)
    _strokes(d, rng, (w // 8, h // 8, w - w // 8, h - h // 8), INK, max(16, w // 18), 0.9)
    return img


def draw_book_cover(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _texture(rng, size, rng.choice([INDIGO, (110, 40, 30), (70, 80, 60)]), 20)
    d = ImageDraw.Draw(img)
    d.rectangle((w * 6 // 10, h // 12, w * 8 // 10, h // 2), fill=PAPER)
    _strokes(d, rng, (w * 6 // 10 + 8, h // 12 + 10, w * 8 // 10 - 8, h // 2 - 10), INK, w // 8, 1)
    return img


def draw_letter(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _texture(rng, size, (238, 232, 214), 14)
    d = ImageDraw.Draw(img)
    for x in range(w // 20, w, w // 24):
        d.line((x, h // 20, x, h - h // 20), fill=(170, 190, 200), width=1)
    _strokes(d, rng, (w // 16, h // 12, w - w // 16, h - h // 12), (30, 30, 60), w // 36, 0.7)
    return img


def draw_envelope(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _gradient(size, (120, 116, 110), (80, 78, 74))
    d = ImageDraw.Draw(img)
    d.rectangle((w // 6, h // 12, w - w // 6, h - h // 12), fill=(214, 196, 160))
    d.rectangle((w * 2 // 3 - 10, h // 8, w * 2 // 3 + 60, h // 8 + 80), fill=VERMILION)
    _strokes(d, rng, (w // 3, h // 5, w // 2 + 40, h - h // 6), INK, 44, 1)
    return img


def draw_postcard(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _gradient(size, (150, 190, 220), (230, 210, 170))
    d = ImageDraw.Draw(img)
    for i in range(5):  # hills
        y = h // 2 + i * h // 12
        d.polygon(
            [(0, h), (0, y), (w // 3, y - h // 6), (w * 2 // 3, y), (w, y - h // 10), (w, h)],
            fill=_jitter(rng, (60, 110, 70), 25),
        )
    d.rectangle((0, 0, w - 1, h - 1), outline=(250, 250, 250), width=16)
    return img


def draw_photo(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """An old albumen/gelatin print: sepia, rows of buildings, a vignette."""
    w, h = size
    img = _gradient(size, (214, 196, 160), (120, 98, 70))
    d = ImageDraw.Draw(img)
    ground = int(h * rng.uniform(0.55, 0.7))
    x = 0
    while x < w:
        bw, bh = rng.randint(w // 12, w // 5), rng.randint(h // 10, h // 3)
        tone = _jitter(rng, (90, 70, 50), 25)
        d.rectangle((x, ground - bh, x + bw, ground), fill=tone)
        d.polygon(
            [
                (x - 10, ground - bh),
                (x + bw // 2, ground - bh - bh // 3),
                (x + bw + 10, ground - bh),
            ],
            fill=_jitter(rng, (60, 50, 40), 10),
        )
        x += bw + rng.randint(0, w // 30)
    d.rectangle((0, ground, w, h), fill=(150, 128, 96))
    img = img.filter(ImageFilter.GaussianBlur(2))
    vignette = Image.new("L", size, 0)
    ImageDraw.Draw(vignette).ellipse((-w // 6, -h // 6, w + w // 6, h + h // 6), fill=255)
    vignette = vignette.filter(ImageFilter.GaussianBlur(min(w, h) // 12))
    return Image.composite(img, Image.new("RGB", size, (50, 40, 30)), vignette)


def draw_map(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A town map of the Edo or Meiji period: river, castle, roads, coloured wards."""
    w, h = size
    img = _texture(rng, size, (226, 212, 170), 24)
    d = ImageDraw.Draw(img)
    for _ in range(40):  # wards
        x, y = rng.randint(0, w), rng.randint(0, h)
        s = rng.randint(w // 30, w // 10)
        d.rectangle(
            (x, y, x + s, y + s * 2 // 3),
            fill=_jitter(
                rng,
                rng.choice([(200, 170, 120), (170, 190, 140), (220, 200, 200), (190, 190, 200)]),
                12,
            ),
        )
    for river in range(2):  # rivers
        pts, y = [], rng.randint(h // 5, h * 4 // 5)
        for x in range(-50, w + 100, w // 12):
            y += rng.randint(-h // 14, h // 14)
            pts.append((x, y))
        d.line(pts, fill=(90, 140, 180), width=max(8, w // (60 + river * 40)), joint="curve")
    for _ in range(12):  # roads
        if rng.random() < 0.5:
            y = rng.randint(0, h)
            d.line((0, y, w, y + rng.randint(-h // 8, h // 8)), fill=(170, 60, 40), width=4)
        else:
            x = rng.randint(0, w)
            d.line((x, 0, x + rng.randint(-w // 8, w // 8), h), fill=(170, 60, 40), width=4)
    cx, cy = w // 2, h // 2
    d.rectangle((cx - w // 14, cy - h // 14, cx + w // 14, cy + h // 14), outline=INK, width=6)
    _strokes(d, rng, (w - w // 8, h // 20, w - w // 30, h // 2), INK, 30, 1)
    return img


def draw_screen(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """One of a pair of six-fold screens: gold clouds, pines, a river, panel seams."""
    w, h = size
    img = _texture(rng, size, GOLD, 30, grain=12)
    d = ImageDraw.Draw(img)
    y = h // 2
    pts = []
    for x in range(0, w + w // 10, w // 10):
        y += rng.randint(-h // 10, h // 10)
        pts.append((x, y))
    d.line(pts, fill=(40, 70, 120), width=h // 8, joint="curve")
    for _ in range(8):  # pines
        x, base = rng.randint(0, w), rng.randint(h // 2, h - h // 10)
        d.line((x, base, x + rng.randint(-40, 40), base - h // 3), fill=(70, 50, 30), width=14)
        for _ in range(5):
            px, py = x + rng.randint(-90, 90), base - rng.randint(h // 6, h // 2)
            d.ellipse((px - 60, py - 20, px + 60, py + 20), fill=_jitter(rng, (40, 90, 50), 15))
    for _ in range(6):  # gold clouds
        x, cy = rng.randint(0, w), rng.choice([h // 10, h - h // 8])
        d.rounded_rectangle((x, cy - 30, x + w // 6, cy + 30), radius=30, fill=(232, 200, 110))
    for i in range(1, 6):
        d.line((i * w // 6, 0, i * w // 6, h), fill=(120, 90, 40), width=3)
    d.rectangle((0, 0, w - 1, h - 1), outline=(40, 24, 16), width=14)
    return img


def draw_scroll(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """An emakimono handscroll, read right to left: scenes of mountains, clouds and people."""
    w, h = size
    img = _texture(rng, size, (228, 214, 180), 22, grain=8)
    d = ImageDraw.Draw(img)
    x = w
    while x > 0:
        scene = rng.randint(h, h * 2)
        for _ in range(3):  # mountains
            mx = x - rng.randint(0, scene)
            peak = rng.randint(h // 8, h // 2)
            d.polygon(
                [(mx - h // 2, h - h // 6), (mx, peak), (mx + h // 2, h - h // 6)],
                fill=_jitter(rng, (120, 140, 110), 20),
            )
        for _ in range(4):  # people
            px, py = x - rng.randint(0, scene), rng.randint(h // 2, h - h // 4)
            d.ellipse((px - 6, py - 30, px + 6, py - 18), fill=INK)
            d.polygon([(px - 14, py), (px, py - 20), (px + 14, py)], fill=rng.choice(KUTANI))
        d.rounded_rectangle(
            (x - scene, h // 12, x - scene // 2, h // 12 + h // 8),
            radius=h // 16,
            fill=(236, 200, 120),
        )
        if rng.random() < 0.4:  # a passage of text between scenes
            _strokes(d, rng, (x - scene // 3, h // 6, x - 10, h - h // 6), INK, 22, 1)
        x -= scene
    return img


def draw_poster(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, _jitter(rng, (220, 200, 160), 20))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, w, h // 3), fill=rng.choice([VERMILION, INDIGO, (40, 90, 60)]))
    d.ellipse((w // 4, h // 3, w * 3 // 4, h // 3 + w // 2), fill=rng.choice(KUTANI))
    _strokes(d, rng, (w // 12, h // 30, w - w // 12, h // 3 - h // 30), (250, 245, 230), w // 8, 1)
    _strokes(d, rng, (w // 10, h * 3 // 4, w - w // 10, h - h // 20), INK, w // 20, 0.9)
    return img


def draw_tool(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A farming or household tool: wooden handle, iron blade, on a grey backdrop."""
    w, h = size
    img = _gradient(size, (180, 180, 176), (120, 120, 116))
    d = ImageDraw.Draw(img)
    d.line((w // 8, h * 3 // 4, w * 3 // 4, h // 4), fill=(140, 96, 56), width=h // 18)
    d.polygon(
        [
            (w * 3 // 4 - 30, h // 4 - 60),
            (w * 7 // 8, h // 6),
            (w * 7 // 8, h // 2),
            (w * 3 // 4, h // 4 + 40),
        ],
        fill=(70, 72, 76),
    )
    return img


def draw_doll(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _gradient(size, (70, 60, 60), (30, 26, 26))
    d = ImageDraw.Draw(img)
    cx = w // 2
    d.polygon(
        [(cx - w // 4, h - h // 10), (cx, h // 3), (cx + w // 4, h - h // 10)],
        fill=rng.choice([VERMILION, INDIGO, (200, 160, 60)]),
    )
    d.ellipse((cx - w // 9, h // 5, cx + w // 9, h // 5 + w * 2 // 9), fill=IVORY)
    d.pieslice((cx - w // 8, h // 5 - 10, cx + w // 8, h // 5 + w // 6), 180, 360, fill=INK)
    _scatter(d, rng, (w, h), GOLD, 40, 5)
    return img


def draw_logo(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    colour = rng.choice([VERMILION, INDIGO, (40, 90, 60), (120, 40, 90)])
    r = min(w, h) // 2 - 8
    d.ellipse((w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r), outline=colour, width=8)
    _strokes(
        d,
        rng,
        (w // 2 - r // 2, h // 2 - r // 2, w // 2 + r // 2, h // 2 + r // 2),
        colour,
        r // 2,
        1,
    )
    return img


DRAWINGS: dict[str, Callable[[random.Random, tuple[int, int]], Image.Image]] = {
    "mask": draw_mask,
    "mask_hannya": lambda rng, size: draw_mask(rng, size, "hannya"),
    "mask_old": lambda rng, size: draw_mask(rng, size, "old"),
    "mask_back": draw_mask_back,
    "costume": draw_costume,
    "textile": draw_textile,
    "fan": draw_fan,
    "plate": draw_plate,
    "vase": draw_vase,
    "bowl": draw_bowl,
    "lacquer": draw_lacquer,
    "gold": draw_gold,
    "manuscript": draw_manuscript,
    "book_page": draw_book_page,
    "book_cover": draw_book_cover,
    "letter": draw_letter,
    "envelope": draw_envelope,
    "postcard": draw_postcard,
    "photo": draw_photo,
    "map": draw_map,
    "screen": draw_screen,
    "scroll": draw_scroll,
    "poster": draw_poster,
    "tool": draw_tool,
    "doll": draw_doll,
    "logo": draw_logo,
}


def render(spec: ImageSpec) -> bytes:
    """The file's bytes; the same spec always gives the same bytes."""
    rng = random.Random(spec.seed)
    img = DRAWINGS[spec.kind](rng, (spec.width, spec.height))
    assert img.size == (spec.width, spec.height), spec
    out = io.BytesIO()
    suffix = Path(spec.path).suffix.lower()
    if suffix == ".png":
        img.save(out, "PNG", optimize=False)
    elif suffix in (".tif", ".tiff"):
        img.save(out, "TIFF", compression="tiff_deflate")
    else:
        img.save(out, "JPEG", quality=82, optimize=False, progressive=False, subsampling="4:2:0")
    return out.getvalue()


def _manifest_path(spec: ImageSpec, root: Path) -> Path:
    return (root / spec.path).parent / ".manifest.json"


def _load_manifest(path: Path) -> dict[str, dict[str, str]]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def generate(
    root: Path = HERE, *, force: bool = False, log: Callable[[str], None] | None = None
) -> tuple[int, int]:
    """Make every image in ``IMAGES`` under ``root``; returns (written, already right).

    A file is right when the manifest beside it records the same drawing key and the
    same sha256 as the file on disk; anything else (missing, truncated, edited,
    drawn by an older version) is redrawn.
    """
    manifests: dict[Path, dict[str, dict[str, str]]] = {}
    written = kept = 0
    for spec in IMAGES:
        mpath = _manifest_path(spec, root)
        manifest = manifests.setdefault(mpath, _load_manifest(mpath))
        dest = root / spec.path
        entry = manifest.get(dest.name, {})
        if not force and entry.get("key") == spec.key() and entry.get("sha256") == _sha256(dest):
            kept += 1
            continue
        data = render(spec)
        _write_atomic(dest, data)
        manifest[dest.name] = {"key": spec.key(), "sha256": hashlib.sha256(data).hexdigest()}
        written += 1
        if log:
            log(f"wrote {spec.path} ({spec.width}x{spec.height}, {len(data) // 1024} KiB)")
    for mpath, manifest in manifests.items():
        text = json.dumps(manifest, indent=1, sort_keys=True)
        if not mpath.is_file() or mpath.read_text(encoding="utf-8") != text:
            _write_atomic(mpath, text.encode("utf-8"))
    return written, kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="redraw every image")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    log = None if args.quiet else print
    written, kept = generate(force=args.force, log=log)
    print(f"sample images: {written} written, {kept} already up to date", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
