"""Parsing an Image API request URL into values, and resolving it against an image.

Pure: no I/O, no pixels. ``parse`` turns the four path segments (region, size,
rotation, quality.format) into a frozen ``ImageRequest`` or raises ``BadRequest``
naming the parameter; ``resolve`` applies it to an image of a given (presented)
size and the server's limits, giving the exact pixel ``Plan`` render executes
and the canonical form used for the Link header and the cache key.

Image API 3.0 §4 (https://iiif.io/api/image/3.0/#4-image-requests) and
2.1 §4 (https://iiif.io/api/image/2.1/#image-request-parameters).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from archive.errors import BadRequest

# Every format we can write; info.json advertises those beyond the level's.
FORMATS: dict[str, str] = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "tif": "image/tiff",
    "pdf": "application/pdf",
    "jp2": "image/jp2",
}
QUALITIES = ("default", "color", "gray", "bitonal")
VERSIONS = ("2", "3")

# Decimal numbers as the spec writes them: no sign, no exponent, no "inf"/"nan".
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_INT = r"\d+"
_REGION_PX_RE = re.compile(rf"^({_INT}),({_INT}),({_INT}),({_INT})$")
_REGION_PCT_RE = re.compile(rf"^pct:({_NUM}),({_NUM}),({_NUM}),({_NUM})$")
_SIZE_PCT_RE = re.compile(rf"^pct:({_NUM})$")
_SIZE_WH_RE = re.compile(rf"^(!)?({_INT})?,({_INT})?$")
_ROTATION_RE = re.compile(rf"^(!)?({_NUM})$")
_MAX_DIGITS = 9  # more digits than any image has pixels: refused before arithmetic


@dataclass(frozen=True)
class Region:
    """§4.1: ``full``, ``square``, pixels ``x,y,w,h`` or percent ``pct:x,y,w,h``."""

    kind: str  # full | square | pixels | percent
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0


@dataclass(frozen=True)
class Size:
    """§4.2: ``max``, ``w,``, ``,h``, ``pct:n``, ``w,h``, ``!w,h``, each optionally ``^``."""

    kind: str  # max | width | height | percent | exact | fit
    w: int = 0
    h: int = 0
    pct: float = 0.0
    upscale: bool = False  # "^" in 3.0; always allowed in 2.1


@dataclass(frozen=True)
class Rotation:
    """§4.3: degrees clockwise, after mirroring when ``mirror``."""

    degrees: float = 0.0
    mirror: bool = False


@dataclass(frozen=True)
class ImageRequest:
    version: str  # "3" or "2"
    region: Region
    size: Size
    rotation: Rotation
    quality: str
    format: str


@dataclass(frozen=True)
class Limits:
    """The server's maxWidth/maxHeight/maxArea (§5.3): 0 means no limit."""

    max_width: int = 0
    max_height: int = 0
    max_area: int = 0


NO_LIMITS = Limits()


@dataclass(frozen=True)
class Plan:
    """What to cut: a pixel region of the presented image, scaled to ``width``×``height``."""

    x: int
    y: int
    region_w: int
    region_h: int
    width: int
    height: int
    rotation: Rotation
    quality: str
    format: str
    canonical: str  # "{region}/{size}/{rotation}/{quality}.{format}"


def _number(text: str, parameter: str) -> float:
    whole = text.split(".", 1)[0]
    if len(whole.lstrip("0")) > _MAX_DIGITS:
        raise BadRequest(f"{parameter}: number {text!r} is too large", parameter)
    return float(text)


def _integer(text: str, parameter: str) -> int:
    if len(text.lstrip("0")) > _MAX_DIGITS:
        raise BadRequest(f"{parameter}: number {text!r} is too large", parameter)
    return int(text)


def parse_region(text: str) -> Region:
    if text in ("full", "square"):
        return Region(text)
    if m := _REGION_PX_RE.match(text):
        x, y, w, h = (_integer(g, "region") for g in m.groups())
        if w == 0 or h == 0:
            raise BadRequest(f"region {text!r} has zero width or height", "region")
        return Region("pixels", x, y, w, h)
    if m := _REGION_PCT_RE.match(text):
        x, y, w, h = (_number(g, "region") for g in m.groups())
        if w == 0 or h == 0:
            raise BadRequest(f"region {text!r} has zero width or height", "region")
        if x >= 100 or y >= 100:
            raise BadRequest(f"region {text!r} starts outside the image", "region")
        return Region("percent", x, y, w, h)
    raise BadRequest(f"region {text!r} is not full, square, x,y,w,h or pct:x,y,w,h", "region")


def parse_size(text: str, version: str) -> Size:
    upscale = version == "2"
    body = text
    if version == "3" and text.startswith("^"):
        upscale, body = True, text[1:]
    if body == "max" or (version == "2" and body == "full"):
        return Size("max", upscale=upscale)
    if m := _SIZE_PCT_RE.match(body):
        pct = _number(m.group(1), "size")
        if pct <= 0:
            raise BadRequest(f"size {text!r}: percentage must be above 0", "size")
        if pct > 100 and not upscale:
            raise BadRequest(f"size {text!r}: above 100% needs the ^ prefix", "size")
        return Size("percent", pct=pct, upscale=upscale)
    if m := _SIZE_WH_RE.match(body):
        bang, w_text, h_text = m.groups()
        w = _integer(w_text, "size") if w_text else 0
        h = _integer(h_text, "size") if h_text else 0
        if (w_text and w == 0) or (h_text and h == 0):
            raise BadRequest(f"size {text!r}: width and height must be above 0", "size")
        if w_text and h_text:
            return Size("fit" if bang else "exact", w, h, upscale=upscale)
        if not bang and w_text:
            return Size("width", w=w, upscale=upscale)
        if not bang and h_text:
            return Size("height", h=h, upscale=upscale)
    allowed = "max, w,, ,h, pct:n, w,h or !w,h (^ to upscale)"
    if version == "2":
        allowed = "full, max, w,, ,h, pct:n, w,h or !w,h"
    raise BadRequest(f"size {text!r} is not one of {allowed}", "size")


def parse_rotation(text: str) -> Rotation:
    m = _ROTATION_RE.match(text)
    if not m:
        raise BadRequest(
            f"rotation {text!r} is not a number of degrees, optionally after !", "rotation"
        )
    degrees = _number(m.group(2), "rotation")
    if degrees > 360:
        raise BadRequest(f"rotation {text!r} is above 360", "rotation")
    return Rotation(degrees % 360, bool(m.group(1)))


def parse_quality_format(text: str) -> tuple[str, str]:
    quality, dot, fmt = text.rpartition(".")
    if not dot:
        raise BadRequest(f"{text!r} is not quality.format (e.g. default.jpg)", "format")
    if quality not in QUALITIES:
        raise BadRequest(f"quality {quality!r} is not one of {', '.join(QUALITIES)}", "quality")
    if fmt not in FORMATS:
        raise BadRequest(f"format {fmt!r} is not one of {', '.join(FORMATS)}", "format")
    return quality, fmt


def parse(version: str, region: str, size: str, rotation: str, quality_format: str) -> ImageRequest:
    """Parse the path segments of an image request; raises BadRequest naming the parameter."""
    if version not in VERSIONS:
        raise BadRequest(f"unknown Image API version {version!r}", "version")
    quality, fmt = parse_quality_format(quality_format)
    return ImageRequest(
        version=version,
        region=parse_region(region),
        size=parse_size(size, version),
        rotation=parse_rotation(rotation),
        quality=quality,
        format=fmt,
    )


# --- resolving against an image --------------------------------------------------------------
def region_pixels(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    """§4.1: the region in pixels of a ``width``×``height`` image, clipped to it."""
    if region.kind == "full":
        return 0, 0, width, height
    if region.kind == "square":
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side, side
    if region.kind == "pixels":
        x, y, w, h = int(region.x), int(region.y), int(region.w), int(region.h)
    else:  # percent
        x = round(region.x * width / 100)
        y = round(region.y * height / 100)
        w = round(region.w * width / 100)
        h = round(region.h * height / 100)
    if x >= width or y >= height:
        raise BadRequest("region lies entirely outside the image", "region")
    w, h = min(w, width - x), min(h, height - y)
    if w <= 0 or h <= 0:
        raise BadRequest("region is smaller than one pixel", "region")
    return x, y, w, h


def _max_size(rw: int, rh: int, limits: Limits) -> tuple[int, int]:
    """The largest size ``max`` may give for a region (§4.2: within maxWidth/Height/Area).

    ``^max`` gives the same: upscaling to the limits would only invent pixels, and
    the official validator expects ``^max`` of a full image to be its full size.
    """
    scale = 1.0
    if limits.max_width and rw > limits.max_width:
        scale = min(scale, limits.max_width / rw)
    if limits.max_height and rh > limits.max_height:
        scale = min(scale, limits.max_height / rh)
    if limits.max_area and rw * rh > limits.max_area:
        scale = min(scale, math.sqrt(limits.max_area / (rw * rh)))
    if scale >= 1.0:
        return rw, rh
    return max(1, int(rw * scale)), max(1, int(rh * scale))


def output_size(size: Size, rw: int, rh: int, limits: Limits) -> tuple[int, int]:
    """§4.2: the output size for a region of ``rw``×``rh`` pixels, within the limits."""
    if size.kind == "max":
        return _max_size(rw, rh, limits)
    if size.kind == "percent":
        w, h = round(rw * size.pct / 100), round(rh * size.pct / 100)
    elif size.kind == "width":
        w, h = size.w, round(rh * size.w / rw)
    elif size.kind == "height":
        w, h = round(rw * size.h / rh), size.h
    elif size.kind == "exact":
        w, h = size.w, size.h
    else:  # fit: the largest size within w×h keeping the aspect ratio
        scale = min(size.w / rw, size.h / rh)
        w, h = round(rw * scale), round(rh * scale)
        # Rounding must never break out of the box.
        w, h = min(w, size.w), min(h, size.h)
    w, h = max(w, 1), max(h, 1)
    if not size.upscale and (w > rw or h > rh):
        raise BadRequest(
            f"size {w}x{h} is larger than the region ({rw}x{rh}); use ^ to upscale", "size"
        )
    if limits.max_width and w > limits.max_width:
        raise BadRequest(f"width {w} is above maxWidth {limits.max_width}", "size")
    if limits.max_height and h > limits.max_height:
        raise BadRequest(f"height {h} is above maxHeight {limits.max_height}", "size")
    if limits.max_area and w * h > limits.max_area:
        raise BadRequest(f"area {w}x{h} is above maxArea {limits.max_area}", "size")
    return w, h


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def canonical(
    req: ImageRequest, x: int, y: int, rw: int, rh: int, w: int, h: int, width: int, height: int
) -> str:
    """§4.7 (3.0) / §4.7 (2.1) canonical URI syntax of a resolved request."""
    region = "full" if (x, y, rw, rh) == (0, 0, width, height) else f"{x},{y},{rw},{rh}"
    if req.version == "3":
        size = "max" if (w, h) == (rw, rh) else f"{w},{h}"
        if w > rw or h > rh:
            size = "^" + size
    else:
        size = (
            "full" if (w, h) == (rw, rh) else (f"{w}," if h == round(rh * w / rw) else f"{w},{h}")
        )
    rotation = ("!" if req.rotation.mirror else "") + _fmt_number(req.rotation.degrees)
    return f"{region}/{size}/{rotation}/{req.quality}.{req.format}"


def resolve(req: ImageRequest, width: int, height: int, limits: Limits = NO_LIMITS) -> Plan:
    """Apply a request to a ``width``×``height`` image: the exact pixels to produce."""
    x, y, rw, rh = region_pixels(req.region, width, height)
    w, h = output_size(req.size, rw, rh, limits)
    return Plan(
        x=x,
        y=y,
        region_w=rw,
        region_h=rh,
        width=w,
        height=h,
        rotation=req.rotation,
        quality=req.quality,
        format=req.format,
        canonical=canonical(req, x, y, rw, rh, w, h, width, height),
    )
