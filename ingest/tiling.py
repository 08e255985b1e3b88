"""Writing the pyramid every image is served from.

The contract between ingest (writer) and iiif (reader): one tiled, pyramidal
TIFF per image; 8-bit sRGB, 3 bands; JPEG-compressed tiles of ``tile_size``
pixels; each pyramid level a page of its own, page 0 full size and page n
``ceil(size / 2**n)``, down to a level that fits in one tile. IIPImage reads the
same files, which is what the Image API benchmark compares against.
"""

from __future__ import annotations

from pathlib import Path

import pyvips


def write_pyramid(
    image: pyvips.Image, dest: Path, *, tile_size: int = 256, quality: int = 85
) -> None:
    """Write ``image`` (already sRGB, 8-bit, 3 bands, orientation applied) to ``dest``."""
    image.tiffsave(
        str(dest),
        tile=True,
        tile_width=tile_size,
        tile_height=tile_size,
        pyramid=True,
        subifd=False,
        compression="jpeg",
        Q=quality,
        bigtiff=image.width * image.height > 1_500_000_000,
        strip=True,
    )
