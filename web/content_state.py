"""IIIF Content State API 1.0: the "share this view" link, encoded and decoded.

A shared view is an Annotation with motivation ``contentState`` whose target is a
Canvas region (``#xywh=``) that is ``partOf`` the object's Manifest (spec §5.1,
"A region of a Canvas in a Manifest"). In a URL it travels as the ``iiif-content``
parameter, content-state-encoded: UTF-8 JSON, base64url, padding removed (§6).
Decoding is strict and total: anything malformed raises ``ContentStateError``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

PARAM = "iiif-content"
MAX_ENCODED = 4096  # a region of one canvas needs a few hundred characters
_XYWH_RE = re.compile(r"^(\d{1,9}),(\d{1,9}),(\d{1,9}),(\d{1,9})$")
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class ContentStateError(ValueError):
    """The ``iiif-content`` parameter is not a content state we can show."""


@dataclass(frozen=True)
class View:
    """A region of one canvas of one manifest, in image pixel coordinates."""

    manifest: str
    canvas: str
    xywh: tuple[int, int, int, int] | None = None


def encode(view: View) -> str:
    """The content-state-encoded Annotation for ``view`` (§6.1)."""
    target_id = view.canvas
    if view.xywh:
        target_id += "#xywh=" + ",".join(str(v) for v in view.xywh)
    state = {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "type": "Annotation",
        "motivation": ["contentState"],
        "target": {
            "id": target_id,
            "type": "Canvas",
            "partOf": [{"id": view.manifest, "type": "Manifest"}],
        },
    }
    raw = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(encoded: str) -> View:
    """Parse an ``iiif-content`` value: an Annotation or a bare Canvas target (§2.2)."""
    if not encoded or len(encoded) > MAX_ENCODED or not _B64URL_RE.match(encoded):
        raise ContentStateError("iiif-content is not base64url-encoded")
    padded = encoded.rstrip("=") + "=" * (-len(encoded.rstrip("=")) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(padded).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ContentStateError("iiif-content does not decode to JSON") from None
    if not isinstance(data, dict):
        raise ContentStateError("iiif-content is not a JSON object")
    target = data.get("target") if data.get("type") == "Annotation" else data
    if isinstance(target, list) and len(target) == 1:
        target = target[0]
    if not isinstance(target, dict) or target.get("type") != "Canvas":
        raise ContentStateError("iiif-content does not target a Canvas")
    target_id = target.get("id")
    part_of = target.get("partOf")
    if not isinstance(target_id, str) or not isinstance(part_of, list) or not part_of:
        raise ContentStateError("iiif-content target needs an id and partOf")
    manifest = part_of[0].get("id") if isinstance(part_of[0], dict) else None
    if not isinstance(manifest, str):
        raise ContentStateError("iiif-content partOf needs a Manifest id")
    canvas, _, fragment = target_id.partition("#")
    xywh = None
    if fragment:
        match = _XYWH_RE.match(fragment.removeprefix("xywh="))
        if not fragment.startswith("xywh=") or not match:
            raise ContentStateError("iiif-content region must be #xywh=x,y,w,h in pixels")
        x, y, w, h = (int(v) for v in match.groups())
        if w == 0 or h == 0:
            raise ContentStateError("iiif-content region is empty")
        xywh = (x, y, w, h)
    return View(manifest=manifest, canvas=canvas, xywh=xywh)
