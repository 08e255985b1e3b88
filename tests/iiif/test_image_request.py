"""Parsing and resolving Image API requests: pure functions, tables from the specs
(3.0 §4, 2.1 §4), and hypothesis: every input either parses or raises BadRequest."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archive.errors import BadRequest
from iiif.image_request import Limits, Region, Rotation, Size, parse, resolve
from iiif.info import level_count, presented_size, scale_factors, sizes

LIMITS = Limits(max_width=10000, max_height=10000, max_area=36_000_000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("full", Region("full")),
        ("square", Region("square")),
        ("125,15,120,140", Region("pixels", 125, 15, 120, 140)),
        ("pct:41.6,7.5,40,70", Region("percent", 41.6, 7.5, 40, 70)),
        ("pct:.5,0,100,100", Region("percent", 0.5, 0, 100, 100)),
    ],
)
def test_region_forms(text, expected):
    assert parse("3", text, "max", "0", "default.jpg").region == expected


@pytest.mark.parametrize(
    ("version", "text", "expected"),
    [
        ("3", "max", Size("max")),
        ("3", "^max", Size("max", upscale=True)),
        ("3", "150,", Size("width", w=150)),
        ("3", "^360,", Size("width", w=360, upscale=True)),
        ("3", ",150", Size("height", h=150)),
        ("3", "pct:50", Size("percent", pct=50.0)),
        ("3", "^pct:120", Size("percent", pct=120.0, upscale=True)),
        ("3", "225,100", Size("exact", 225, 100)),
        ("3", "!225,100", Size("fit", 225, 100)),
        ("3", "^!225,100", Size("fit", 225, 100, upscale=True)),
        ("2", "full", Size("max", upscale=True)),
        ("2", "max", Size("max", upscale=True)),
        ("2", "150,", Size("width", w=150, upscale=True)),
    ],
)
def test_size_forms(version, text, expected):
    assert parse(version, "full", text, "0", "default.jpg").size == expected


@pytest.mark.parametrize(
    ("version", "text"),
    [
        ("3", "full"),
        ("3", "pct:120"),
        ("2", "^max"),
        ("3", "!150,"),
        ("3", ","),
        ("3", "0,"),
        ("3", "pct:0"),
        ("3", "-5,"),
        ("3", "1e3,"),
        ("3", "150.5,"),
        ("3", " 150,"),
        ("3", ""),
    ],
)
def test_bad_sizes(version, text):
    with pytest.raises(BadRequest) as err:
        parse(version, "full", text, "0", "default.jpg")
    assert err.value.parameter == "size"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Rotation(0, False)),
        ("22.5", Rotation(22.5, False)),
        ("!90", Rotation(90, True)),
        ("360", Rotation(0, False)),
        ("!0", Rotation(0, True)),
    ],
)
def test_rotation_forms(text, expected):
    assert parse("3", "full", "max", text, "default.jpg").rotation == expected


@pytest.mark.parametrize("text", ["-90", "361", "nan", "inf", "1e2", "90!", "!!90", ""])
def test_bad_rotations(text):
    with pytest.raises(BadRequest) as err:
        parse("3", "full", "max", text, "default.jpg")
    assert err.value.parameter == "rotation"


@pytest.mark.parametrize(
    ("text", "parameter"),
    [
        ("native.jpg", "quality"),
        ("grey.jpg", "quality"),
        ("default.bmp", "format"),
        ("default", "format"),
        ("default.JPG", "format"),
        ("", "format"),
    ],
)
def test_bad_quality_format(text, parameter):
    with pytest.raises(BadRequest) as err:
        parse("3", "full", "max", "0", text)
    assert err.value.parameter == parameter


# --- resolve: the spec's examples on a 300×200 image (3.0 §4.1, §4.2) ----------------------
@pytest.mark.parametrize(
    ("region", "size", "expected"),
    [
        ("full", "max", (0, 0, 300, 200, 300, 200)),
        ("square", "max", (50, 0, 200, 200, 200, 200)),
        ("125,15,120,140", "max", (125, 15, 120, 140, 120, 140)),
        ("125,15,200,200", "max", (125, 15, 175, 185, 175, 185)),  # clipped at the edge
        ("pct:41.6,7.5,40,70", "max", (125, 15, 120, 140, 120, 140)),
        ("pct:41.6,7.5,66.6,100", "max", (125, 15, 175, 185, 175, 185)),
        ("full", "150,", (0, 0, 300, 200, 150, 100)),
        ("full", ",150", (0, 0, 300, 200, 225, 150)),
        ("full", "pct:50", (0, 0, 300, 200, 150, 100)),
        ("full", "225,100", (0, 0, 300, 200, 225, 100)),
        ("full", "!225,100", (0, 0, 300, 200, 150, 100)),
        ("full", "^360,", (0, 0, 300, 200, 360, 240)),
        ("full", "^pct:120", (0, 0, 300, 200, 360, 240)),
        ("full", "^!450,400", (0, 0, 300, 200, 450, 300)),
    ],
)
def test_resolve_spec_examples(region, size, expected):
    plan = resolve(parse("3", region, size, "0", "default.jpg"), 300, 200, LIMITS)
    assert (plan.x, plan.y, plan.region_w, plan.region_h, plan.width, plan.height) == expected


@pytest.mark.parametrize(
    ("region", "size"),
    [
        ("300,0,10,10", "max"),
        ("0,200,10,10", "max"),
        ("pct:100,0,10,10", "max"),
        ("full", "301,"),
        ("full", ",201"),
        ("full", "!450,400"),
        ("full", "pct:101"),
    ],
)
def test_resolve_refuses_impossible(region, size):
    with pytest.raises(BadRequest):
        resolve(parse("3", region, size, "0", "default.jpg"), 300, 200, LIMITS)


def test_limits_are_enforced_and_max_respects_them():
    limits = Limits(max_width=1000, max_height=800, max_area=500_000)
    plan = resolve(parse("3", "full", "max", "0", "default.jpg"), 4000, 2000, limits)
    assert plan.width <= 1000 and plan.height <= 800 and plan.width * plan.height <= 500_000
    assert abs(plan.width / plan.height - 2) < 0.01
    for size in ("1001,", ",801", "^900,700", "pct:50"):
        with pytest.raises(BadRequest):
            resolve(parse("3", "full", size, "0", "default.jpg"), 4000, 2000, limits)


@pytest.mark.parametrize(
    ("version", "url", "canonical"),
    [
        ("3", ("full", "max", "0", "default.jpg"), "full/max/0/default.jpg"),
        ("3", ("0,0,300,200", "pct:50", "0", "default.jpg"), "full/150,100/0/default.jpg"),
        ("3", ("square", "max", "!90.0", "gray.png"), "50,0,200,200/max/!90/gray.png"),
        ("3", ("full", "^360,", "22.50", "default.jpg"), "full/^360,240/22.5/default.jpg"),
        ("2", ("full", "full", "0", "default.jpg"), "full/full/0/default.jpg"),
        ("2", ("full", "!150,150", "0", "default.jpg"), "full/150,/0/default.jpg"),
        ("2", ("full", "150,150", "0", "default.jpg"), "full/150,150/0/default.jpg"),
    ],
)
def test_canonical_forms(version, url, canonical):
    assert resolve(parse(version, *url), 300, 200, LIMITS).canonical == canonical


# --- info arithmetic ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "cap", "expected"),
    [
        ((6000, 4000), 0, (6000, 4000)),
        ((6000, 4000), 1200, (1200, 800)),
        ((4000, 6000), 1200, (800, 1200)),
        ((1000, 700), 1200, (1000, 700)),
        ((10000, 3), 100, (100, 1)),
    ],
)
def test_presented_size(size, cap, expected):
    assert presented_size(*size, cap) == expected


def test_pyramid_levels_match_the_tiler():
    # ingest/tiling.py: page n is ceil(size / 2**n), down to one tile.
    assert level_count(6000, 4000) == 6
    assert scale_factors(6000, 4000) == [1, 2, 4, 8, 16, 32]
    assert sizes(6000, 4000)[0] == {"width": 188, "height": 125}
    assert sizes(6000, 4000)[-1] == {"width": 6000, "height": 4000}
    assert level_count(200, 100) == 1


# --- hypothesis: never anything but a value or BadRequest --------------------------------------
segment = st.text(st.characters(codec="utf-8"), max_size=24)
number = st.from_regex(r"\A(\d{1,4}(\.\d{0,3})?|\.\d{1,3})\Z")
region_text = st.one_of(
    segment,
    st.sampled_from(["full", "square"]),
    st.builds(lambda *p: ",".join(p), number, number, number, number),
    st.builds(lambda *p: "pct:" + ",".join(p), number, number, number, number),
)
size_text = st.one_of(
    segment,
    st.sampled_from(["max", "^max", "full"]),
    st.builds(
        lambda up, bang, w, h: up + bang + w + "," + h,
        st.sampled_from(["", "^"]),
        st.sampled_from(["", "!"]),
        st.one_of(st.just(""), number),
        st.one_of(st.just(""), number),
    ),
    st.builds(lambda up, p: f"{up}pct:{p}", st.sampled_from(["", "^"]), number),
)
rotation_text = st.one_of(
    segment, st.builds(lambda m, n: m + n, st.sampled_from(["", "!"]), number)
)
qf_text = st.one_of(
    segment,
    st.builds(
        lambda q, f: f"{q}.{f}",
        st.sampled_from(["default", "color", "gray", "bitonal", "x"]),
        st.sampled_from(["jpg", "png", "webp", "gif", "tif", "pdf", "jp2", "bmp"]),
    ),
)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["2", "3"]),
    region_text,
    size_text,
    rotation_text,
    qf_text,
    st.integers(1, 5000),
    st.integers(1, 5000),
)
def test_parse_and_resolve_never_fail_otherwise(version, region, size, rotation, qf, w, h):
    try:
        plan = resolve(parse(version, region, size, rotation, qf), w, h, LIMITS)
    except BadRequest as exc:
        assert exc.parameter in ("region", "size", "rotation", "quality", "format")
        return
    assert 0 <= plan.x < w and 0 <= plan.y < h
    assert 1 <= plan.region_w <= w - plan.x and 1 <= plan.region_h <= h - plan.y
    assert 1 <= plan.width <= LIMITS.max_width and 1 <= plan.height <= LIMITS.max_height
    assert plan.width * plan.height <= LIMITS.max_area
    if version == "3" and not size.startswith("^"):
        assert plan.width <= plan.region_w and plan.height <= plan.region_h
