"""Image information (info.json) for 3.0 and 2.1, and the arithmetic of the pyramid.

Pure functions of numbers. A capped image (``max_image_size``) is *presented*
as an image of the capped size: its width, height, ``sizes`` and ``tiles`` all
describe that smaller image, so clients never learn of, or ask for, more.

Image API 3.0 §5 (https://iiif.io/api/image/3.0/#5-image-information) and
2.1 §5 (https://iiif.io/api/image/2.1/#image-information).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from .image_request import FORMATS, NO_LIMITS, Limits

CONTEXT_3 = "http://iiif.io/api/image/3/context.json"
CONTEXT_2 = "http://iiif.io/api/image/2/context.json"
PROTOCOL = "http://iiif.io/api/image"
PROFILE_3 = "level2"
PROFILE_3_URI = "http://iiif.io/api/image/3/level2.json"
PROFILE_2 = "http://iiif.io/api/image/2/level2.json"

# Beyond level 2 (3.0 compliance §3, §4): what we implement on top of the level.
EXTRA_FEATURES_3 = [
    "canonicalLinkHeader",
    "mirroring",
    "profileLinkHeader",
    "rotationArbitrary",
    "sizeUpscaling",
]
EXTRA_QUALITIES = ["color", "gray", "bitonal"]
# Level 2 requires jpg and png; the rest are extras (only those render can write).
LEVEL_FORMATS = ("jpg", "png")
# 2.1 profile "supports": every feature name we implement (2.1 compliance §2).
SUPPORTS_2 = [
    "baseUriRedirect",
    "canonicalLinkHeader",
    "cors",
    "jsonldMediaType",
    "mirroring",
    "profileLinkHeader",
    "regionByPct",
    "regionByPx",
    "regionSquare",
    "rotationArbitrary",
    "rotationBy90s",
    "sizeAboveFull",
    "sizeByConfinedWh",
    "sizeByDistortedWh",
    "sizeByH",
    "sizeByPct",
    "sizeByW",
    "sizeByWh",
]


def presented_size(width: int, height: int, max_image_size: int) -> tuple[int, int]:
    """The size clients see: the full size, or scaled so the longest side is the cap."""
    longest = max(width, height)
    if max_image_size <= 0 or longest <= max_image_size:
        return width, height
    scale = max_image_size / longest
    if width >= height:
        return max_image_size, max(1, round(height * scale))
    return max(1, round(width * scale)), max_image_size


# --- Versioned identifiers (what makes image URLs immutable) ------------------------------
# The identifier we publish is ``<image id>.<tag>``: the tag is a digest of what every URL
# of the image shows (the pyramid's version and the presented size, so a new cap is a new
# tag too), so a tile under it never changes and can be cached for a year. The bare image
# id keeps answering, with a short lifetime, for links made before. Bump RENDER_REVISION
# when a release changes the pixels renders produce: every tag moves with it.
RENDER_REVISION = "1"
TAG_LENGTH = 10
_TAG_RE = re.compile(rf"^[0-9a-f]{{{TAG_LENGTH}}}$")


def image_tag(version: str, width: int, height: int) -> str:
    """The tag of an image's pixels (pyramid ``version``) presented at ``width`` x ``height``."""
    key = f"{version}:{width}x{height}:{RENDER_REVISION}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:TAG_LENGTH]


def versioned_id(image_id: str, version: str, width: int, height: int, cap: int = 0) -> str:
    """The identifier to publish for an image of full size ``width`` x ``height`` under ``cap``."""
    return f"{image_id}.{image_tag(version, *presented_size(width, height, cap))}"


def split_identifier(identifier: str) -> tuple[str, str | None]:
    """(image id, tag) of a published identifier; tag None for a bare image id.

    Image ids never contain a dot, so the last dot separates the tag; a part after it
    that is not a tag is left in the id, which the lookup then refuses as unknown.
    """
    image_id, dot, tag = identifier.rpartition(".")
    if dot and _TAG_RE.match(tag):
        return image_id, tag
    return identifier, None


def level_count(width: int, height: int, tile_size: int = 256) -> int:
    """Levels of a pyramid halving down to one that fits in one tile (ingest/tiling.py)."""
    levels = 1
    while max(width, height) > tile_size:
        width, height = math.ceil(width / 2), math.ceil(height / 2)
        levels += 1
    return levels


def level_size(width: int, height: int, level: int) -> tuple[int, int]:
    """Page ``level`` of the pyramid: ceil(size / 2**level)."""
    factor = 2**level
    return math.ceil(width / factor), math.ceil(height / factor)


def scale_factors(width: int, height: int, tile_size: int = 256) -> list[int]:
    return [2**n for n in range(level_count(width, height, tile_size))]


def sizes(width: int, height: int, tile_size: int = 256) -> list[dict[str, int]]:
    """§5.6 ``sizes``: each pyramid level, smallest first, all cheap to serve whole."""
    levels = level_count(width, height, tile_size)
    out = []
    for n in reversed(range(levels)):
        w, h = level_size(width, height, n)
        out.append({"width": w, "height": h})
    return out


def _limits_fields(limits: Limits) -> dict[str, int]:
    fields = {}
    if limits.max_width:
        fields["maxWidth"] = limits.max_width
    if limits.max_height:
        fields["maxHeight"] = limits.max_height
    if limits.max_area:
        fields["maxArea"] = limits.max_area
    return fields


def _viewable_sizes(width: int, height: int, tile_size: int, limits: Limits) -> list[dict]:
    """Sizes within the server limits: advertising a size we refuse would be a lie."""
    out = []
    for size in sizes(width, height, tile_size):
        w, h = size["width"], size["height"]
        if limits.max_width and w > limits.max_width:
            continue
        if limits.max_height and h > limits.max_height:
            continue
        if limits.max_area and w * h > limits.max_area:
            continue
        out.append(size)
    return out


def info_v3(
    service_id: str,
    width: int,
    height: int,
    *,
    tile_size: int = 256,
    limits: Limits = NO_LIMITS,
    formats: tuple[str, ...] = tuple(FORMATS),
    rights: str | None = None,
    part_of: str | None = None,
) -> dict[str, Any]:
    """3.0 §5: the info.json of a (presented) ``width``×``height`` image.

    ``part_of`` is the URL of the manifest the image belongs to (3.0 §5.7 ``partOf``),
    so a researcher holding only an image URL can find its record.
    """
    info: dict[str, Any] = {
        "@context": CONTEXT_3,
        "id": service_id,
        "type": "ImageService3",
        "protocol": PROTOCOL,
        "profile": PROFILE_3,
        "width": width,
        "height": height,
        **_limits_fields(limits),
        "sizes": _viewable_sizes(width, height, tile_size, limits),
        "tiles": [
            {
                "width": tile_size,
                "height": tile_size,
                "scaleFactors": scale_factors(width, height, tile_size),
            }
        ],
        "preferredFormats": ["jpg"],
        "extraFormats": [f for f in formats if f not in LEVEL_FORMATS],
        "extraQualities": list(EXTRA_QUALITIES),
        "extraFeatures": list(EXTRA_FEATURES_3),
    }
    if rights:
        info["rights"] = rights
    if part_of:
        info["partOf"] = [{"id": part_of, "type": "Manifest"}]
    return info


def info_v2(
    service_id: str,
    width: int,
    height: int,
    *,
    tile_size: int = 256,
    limits: Limits = NO_LIMITS,
    formats: tuple[str, ...] = tuple(FORMATS),
    rights: str | None = None,
) -> dict[str, Any]:
    """2.1 §5: the info.json of a (presented) ``width``×``height`` image."""
    profile: dict[str, Any] = {
        "formats": list(formats),
        "qualities": ["default", *EXTRA_QUALITIES],
        "supports": list(SUPPORTS_2),
        **_limits_fields(limits),
    }
    info: dict[str, Any] = {
        "@context": CONTEXT_2,
        "@id": service_id,
        "protocol": PROTOCOL,
        "width": width,
        "height": height,
        "sizes": _viewable_sizes(width, height, tile_size, limits),
        "tiles": [
            {
                "width": tile_size,
                "height": tile_size,
                "scaleFactors": scale_factors(width, height, tile_size),
            }
        ],
        "profile": [PROFILE_2, profile],
    }
    if rights:
        info["license"] = rights
    return info
