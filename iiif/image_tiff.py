"""Reading the structure of our pyramidal TIFFs without decoding pixels.

Each page (IFD) is one pyramid level (ingest/tiling.py). Knowing every level's
size, tile size and where each JPEG tile lies lets render choose the right level
and copy an exact viewer tile straight out of the file, without decode and
re-encode: the common case of a deep-zoom viewer. TIFF 6.0 and BigTIFF.
"""

from __future__ import annotations

import json
import os
import struct
from array import array
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

# TIFF tags we need (TIFF 6.0 §8, §15 tiles; TechNote 2 JPEGTables).
_WIDTH, _HEIGHT, _COMPRESSION, _PHOTOMETRIC = 256, 257, 259, 262
_TILE_WIDTH, _TILE_HEIGHT, _TILE_OFFSETS, _TILE_COUNTS = 322, 323, 324, 325
_SAMPLES, _JPEG_TABLES = 277, 347
_PHOTOMETRIC_RGB, _PHOTOMETRIC_YCBCR = 2, 6
# Adobe APP14 with transform 0: "these three components are RGB, not YCbCr". libvips
# writes RGB-coded JPEG tiles at Q >= 90; the marker makes such a tile a JPEG file every
# decoder (browsers, Apple's ImageIO, libjpeg) reads in the right colours on its own.
_ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"
_COMPRESSION_JPEG = 7
# Field types: size in bytes and struct code.
_TYPES = {
    1: (1, "B"),
    2: (1, "c"),
    3: (2, "H"),
    4: (4, "I"),
    7: (1, "B"),
    16: (8, "Q"),
    17: (1, "b"),
    8: (2, "h"),
    9: (4, "i"),
    11: (4, "f"),
    12: (8, "d"),
    13: (4, "I"),
    18: (8, "q"),
}
_CACHED_MAGIC = b"archive-pyramid-1\n"
_MAX_FIELD = 1 << 28  # 256 MiB: tile offsets of a 2-gigapixel level are ~250 KiB
_MAX_PAGES = 64  # a pyramid of a 2**64-pixel side: anything more is a broken file


class PyramidError(Exception):
    """The file is not a pyramid we wrote."""


@dataclass(frozen=True, eq=False)
class Level:
    """One page of the pyramid. The tile index is kept as machine integers (16 bytes a
    tile, not ~70 as Python ints), as a server holds thousands of these at once."""

    width: int
    height: int
    tile_width: int
    tile_height: int
    jpeg: bool  # JPEG tiles of 3 components, RGB- or YCbCr-coded
    offsets: array  # of "Q"
    counts: array
    jpeg_tables: bytes
    photometric: int = _PHOTOMETRIC_YCBCR

    @property
    def tiles_across(self) -> int:
        return -(-self.width // self.tile_width)

    def tile_bytes(self, fh, col: int, row: int) -> bytes | None:
        """One tile as a complete, standalone JPEG file, or None if it is not JPEG.

        TIFF keeps the Huffman and quantisation tables once per page (JPEGTables,
        TIFF Technical Note 2); they are spliced in after the SOI, and RGB-coded tiles
        get the Adobe marker that says so.
        """
        if not self.jpeg:
            return None
        index = row * self.tiles_across + col
        read_range = getattr(fh, "read_range", None)
        if read_range is not None:  # a PyramidFile: one read (one ranged GET on S3)
            data = read_range(self.offsets[index], self.counts[index])
        else:
            fh.seek(self.offsets[index])
            data = fh.read(self.counts[index])
        if len(data) != self.counts[index]:
            raise PyramidError(f"tile {index} of a level is cut short (the file is truncated)")
        if not data.startswith(b"\xff\xd8"):
            return None
        tables = self.jpeg_tables
        if tables.startswith(b"\xff\xd8") and tables.endswith(b"\xff\xd9"):
            tables = tables[2:-2]
        else:
            tables = b""
        adobe = _ADOBE_RGB if self.photometric == _PHOTOMETRIC_RGB else b""
        return b"\xff\xd8" + adobe + tables + data[2:]


@dataclass(frozen=True)
class Pyramid:
    path: str
    levels: tuple[Level, ...]

    @property
    def width(self) -> int:
        return self.levels[0].width

    @property
    def height(self) -> int:
        return self.levels[0].height

    @property
    def tile_size(self) -> int:
        return self.levels[0].tile_width

    def to_bytes(self) -> bytes:
        """A compact copy (a JSON head, then the tile indexes as machine integers), for
        sharing a remote pyramid's structure between the processes of a node."""
        head = {
            "path": self.path,
            "levels": [
                [lv.width, lv.height, lv.tile_width, lv.tile_height, lv.jpeg, lv.photometric]
                + [len(lv.offsets), len(lv.counts), len(lv.jpeg_tables)]
                for lv in self.levels
            ],
        }
        raw = json.dumps(head).encode("utf-8")
        parts = [_CACHED_MAGIC, struct.pack("<I", len(raw)), raw]
        for lv in self.levels:
            parts += [lv.offsets.tobytes(), lv.counts.tobytes(), lv.jpeg_tables]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Pyramid:
        """The inverse of ``to_bytes``; PyramidError on anything else."""
        try:
            if not data.startswith(_CACHED_MAGIC):
                raise ValueError("not a cached pyramid")
            pos = len(_CACHED_MAGIC)
            (size,) = struct.unpack_from("<I", data, pos)
            pos += 4
            head = json.loads(data[pos : pos + size])
            pos += size
            levels = []
            for width, height, tw, th, jpeg, photometric, n_off, n_cnt, n_tab in head["levels"]:
                offsets, counts = array("Q"), array("Q")
                offsets.frombytes(data[pos : pos + 8 * n_off])
                pos += 8 * n_off
                counts.frombytes(data[pos : pos + 8 * n_cnt])
                pos += 8 * n_cnt
                tables = data[pos : pos + n_tab]
                pos += n_tab
                if len(offsets) != n_off or len(counts) != n_cnt or len(tables) != n_tab:
                    raise ValueError("truncated")
                levels.append(
                    Level(width, height, tw, th, bool(jpeg), offsets, counts, tables, photometric)
                )
            if pos != len(data) or not levels:
                raise ValueError("wrong length")
            return cls(str(head["path"]), tuple(levels))
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            raise PyramidError(f"unreadable cached structure: {exc}") from None


def _read_values(fh, endian: str, typ: int, count: int, value_field: bytes, big: bool):
    size, code = _TYPES.get(typ, (1, "B"))
    total = size * count
    if total > _MAX_FIELD:
        raise PyramidError("TIFF field larger than any pyramid of ours")
    inline = 8 if big else 4
    if total <= inline:
        raw = value_field[:total]
    else:
        offset = struct.unpack(endian + ("Q" if big else "I"), value_field[: 8 if big else 4])[0]
        fh.seek(offset)
        raw = fh.read(total)
        if len(raw) != total:
            raise PyramidError("truncated TIFF field")
    if typ in (2, 7):
        return raw
    return struct.unpack(f"{endian}{count}{code}", raw)


def read_pyramid(path: str | Path, fh: BinaryIO | None = None) -> Pyramid:
    """Every level's geometry and tile index. Raises PyramidError on anything unexpected:
    a truncated file, garbage, a broken directory (OSError when it cannot be opened).

    Reads ``path``, or the file object ``fh`` (a store's ``PyramidFile``, which reads
    ahead, so a remote pyramid's directories take a few ranged GETs) named ``path``.
    """
    if fh is None:
        with open(path, "rb") as local:
            return read_pyramid(path, local)
    try:
        return _read_pyramid(path, fh)
    except (struct.error, ValueError, OverflowError, MemoryError) as exc:
        raise PyramidError(f"broken TIFF structure ({exc})") from None


def _file_size(fh) -> int | None:
    """The size of a local file or of a store's ``PyramidFile`` (which learns it from its
    first read), or None when it cannot say."""
    size = getattr(fh, "size", None)
    if isinstance(size, int):
        return size if size >= 0 else None
    try:
        return os.fstat(fh.fileno()).st_size
    except (AttributeError, OSError):
        return None


def _read_pyramid(path: str | Path, fh) -> Pyramid:
    levels = []
    fh.seek(0)  # the handle may have been read before (archive check reads it twice)
    head = fh.read(16)
    file_size = _file_size(fh)  # after a read: a remote handle knows it from then on
    end = file_size if file_size is not None else 1 << 63
    if head[:2] == b"II":
        endian = "<"
    elif head[:2] == b"MM":
        endian = ">"
    else:
        raise PyramidError("not a TIFF file")
    magic = struct.unpack(endian + "H", head[2:4])[0]
    if magic == 42:
        big = False
        offset = struct.unpack(endian + "I", head[4:8])[0]
    elif magic == 43:
        big = True
        offset = struct.unpack(endian + "Q", head[8:16])[0]
    else:
        raise PyramidError("not a TIFF file")
    seen = set()
    while offset and len(levels) < _MAX_PAGES:
        if offset in seen:
            raise PyramidError("TIFF pages loop")
        seen.add(offset)
        if offset >= end:
            raise PyramidError("a directory lies beyond the end of the file (truncated)")
        fh.seek(offset)
        if big:
            (n,) = struct.unpack(endian + "Q", fh.read(8))
            entry_size, entry_fmt = 20, endian + "HHQ8s"
        else:
            (n,) = struct.unpack(endian + "H", fh.read(2))
            entry_size, entry_fmt = 12, endian + "HHI4s"
        if n > 4096:
            raise PyramidError("TIFF directory too large")
        block = fh.read(n * entry_size)
        next_raw = fh.read(8 if big else 4)
        if len(block) != n * entry_size or len(next_raw) != (8 if big else 4):
            raise PyramidError("truncated TIFF directory")
        entries = {}
        for i in range(n):
            tag, typ, count, value = struct.unpack_from(entry_fmt, block, i * entry_size)
            entries[tag] = (typ, count, value)
        offset = struct.unpack(endian + ("Q" if big else "I"), next_raw)[0]

        def get(tag, entries=entries):
            if tag not in entries:
                return None
            typ, count, value = entries[tag]
            return _read_values(fh, endian, typ, count, value, big)

        width, height = get(_WIDTH), get(_HEIGHT)
        tw, th = get(_TILE_WIDTH), get(_TILE_HEIGHT)
        offsets, counts = get(_TILE_OFFSETS), get(_TILE_COUNTS)
        if not (width and height and tw and th and offsets and counts):
            raise PyramidError("TIFF page is not tiled")
        across, down = -(-width[0] // tw[0]), -(-height[0] // th[0])
        if len(offsets) != len(counts) or len(offsets) < across * down:
            raise PyramidError("TIFF tile index does not match the page's size")
        if max(o + c for o, c in zip(offsets, counts, strict=True)) > end:
            raise PyramidError("tiles lie beyond the end of the file (truncated)")
        compression = get(_COMPRESSION) or (1,)
        samples = get(_SAMPLES) or (1,)
        photometric = (get(_PHOTOMETRIC) or (_PHOTOMETRIC_RGB,))[0]
        tables = get(_JPEG_TABLES) or b""
        levels.append(
            Level(
                width=width[0],
                height=height[0],
                tile_width=tw[0],
                tile_height=th[0],
                jpeg=compression[0] == _COMPRESSION_JPEG
                and samples[0] == 3
                and photometric in (_PHOTOMETRIC_RGB, _PHOTOMETRIC_YCBCR),
                offsets=array("Q", offsets),
                counts=array("Q", counts),
                jpeg_tables=bytes(tables),
                photometric=photometric,
            )
        )
    if not levels:
        raise PyramidError("TIFF has no pages")
    return Pyramid(str(path), tuple(levels))


@lru_cache(maxsize=4096)
def pyramid(path: str) -> Pyramid:
    """Cached per process: a path carries the image's version, so it never goes stale."""
    return read_pyramid(path)


def verify_tiles(path: str | Path, fh: BinaryIO | None = None) -> int:
    """Read every stored tile of the pyramid at ``path`` (or in the store's file ``fh``)
    for ``archive check --deep``: each must lie whole in the file and be a complete JPEG
    (start and end markers). Returns the number of tiles; raises PyramidError naming the
    first bad level and tile."""
    if fh is None:
        with open(path, "rb") as local:
            return verify_tiles(path, local)
    pyr = read_pyramid(path, fh)
    tiles = 0
    for n, level in enumerate(pyr.levels):
        down = -(-level.height // level.tile_height)
        for row in range(down):
            for col in range(level.tiles_across):
                try:
                    data = level.tile_bytes(fh, col, row)
                except PyramidError as exc:
                    raise PyramidError(f"level {n}, tile {col},{row}: {exc}") from None
                if data is not None and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
                    raise PyramidError(f"level {n}, tile {col},{row}: JPEG cut short")
                tiles += 1
    return tiles
