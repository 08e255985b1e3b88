"""Hypothesis throws arbitrary strings at every path segment of the Image API: each
request renders or answers 400/404/501 (never 500), and no file outside the archive's
image store and cache is opened while answering."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive.context import Archive

ALLOWED = {200, 303, 400, 404, 501}
PYTHON = Path(sys.base_prefix).resolve()
_opened: list[str] = []
_watching = threading.local()


def _audit(event: str, args: tuple) -> None:
    if event == "open" and getattr(_watching, "on", False) and isinstance(args[0], str | bytes):
        _opened.append(args[0].decode() if isinstance(args[0], bytes) else args[0])


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory, add_image, pattern):
    """One small archive for every example (hypothesis reuses it): a public image, a
    non-public one, and a small maxArea so upscaling examples stay cheap."""
    from archive.config import Config
    from iiif.routes import image_blueprint

    home = tmp_path_factory.mktemp("fuzz") / "home"
    config = Config.load(home, environ={}).replace(
        iiif_max_area=400_000, iiif_max_width=2000, iiif_max_height=2000
    )
    archive = Archive(config)
    public = add_image(archive, "F-1", pattern(300, 200))
    hidden = add_image(archive, "F-2", pattern(300, 200), public=False)
    app = Flask(__name__)
    app.register_blueprint(image_blueprint(archive))
    yield app.test_client(), archive, public, hidden
    archive.close()


def _allowed_roots(archive: Archive) -> list[Path]:
    return [archive.home.images.resolve(), archive.home.cache.resolve()]


def fetch(client, archive: Archive, path: str):
    _opened.clear()
    _watching.on = True
    try:
        resp = client.get(path)
    finally:
        _watching.on = False
    roots = _allowed_roots(archive)
    for opened in _opened:
        target = Path(opened).resolve()
        if target.suffix in (".py", ".pyc", ".so") or target.is_relative_to(PYTHON):
            continue  # a module imported lazily, not data
        assert any(target.is_relative_to(root) for root in roots), f"{path} opened {opened}"
    assert resp.status_code in ALLOWED, (path, resp.status_code, resp.data[:200])
    if resp.status_code >= 400:
        assert b"Traceback" not in resp.data
    return resp


any_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30)
tricky = st.sampled_from(
    [
        "..",
        ".",
        "%2e%2e",
        "..%2F..",
        "~",
        "full",
        "max",
        "0",
        "default.jpg",
        "^",
        "!",
        "pct:",
        ",",
        "%00",
        "info.json",
    ]
)
segment = st.one_of(any_text, tricky)
number = st.from_regex(r"\A\d{1,5}(\.\d{1,2})?\Z")
valid_region = st.one_of(
    st.sampled_from(["full", "square"]),
    st.builds(lambda *n: ",".join(n), number, number, number, number),
    st.builds(lambda *n: "pct:" + ",".join(n), number, number, number, number),
)
valid_size = st.one_of(
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
valid_rotation = st.builds(lambda m, n: m + n, st.sampled_from(["", "!"]), number)
valid_qf = st.builds(
    lambda q, f: f"{q}.{f}",
    st.sampled_from(["default", "color", "gray", "bitonal"]),
    st.sampled_from(["jpg", "png", "webp", "gif", "tif", "pdf", "jp2"]),
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def q(text: str) -> str:
    return quote(text, safe="")


@FUZZ
@given(
    st.sampled_from(["2", "3"]),
    st.one_of(valid_region, segment),
    st.one_of(valid_size, segment),
    st.one_of(valid_rotation, segment),
    st.one_of(valid_qf, segment),
)
def test_any_parameters_on_a_public_image(fuzz_env, version, region, size, rotation, qf):
    client, archive, public, _ = fuzz_env
    fetch(client, archive, f"/iiif/{version}/{public}/{q(region)}/{q(size)}/{q(rotation)}/{q(qf)}")


@FUZZ
@given(st.sampled_from(["2", "3"]), valid_region, valid_size, valid_rotation, valid_qf)
def test_valid_looking_requests_render_or_refuse(fuzz_env, version, region, size, rotation, qf):
    client, archive, public, hidden = fuzz_env
    path = f"/{q(region)}/{q(size)}/{q(rotation)}/{q(qf)}"
    resp = fetch(client, archive, f"/iiif/{version}/{public}{path}")
    assert resp.status_code in (200, 400)
    # Whatever the parameters, a non-public image is not found.
    assert fetch(client, archive, f"/iiif/{version}/{hidden}{path}").status_code == 404


@FUZZ
@given(
    st.one_of(segment, st.builds(lambda a, b: f"{a}~{b}", segment, segment)),
    st.sampled_from(["", "/info.json", "/full/max/0/default.jpg"]),
    st.booleans(),
)
def test_any_identifier(fuzz_env, image_id, tail, raw):
    client, archive, public, _ = fuzz_env
    ident = image_id if raw else q(image_id)
    if not ident or ident.startswith("/") or "?" in ident or "#" in ident:
        return
    resp = fetch(client, archive, f"/iiif/3/{ident}{tail}")
    if image_id != public:
        assert resp.status_code in (400, 404)


def test_huge_sizes_are_refused_before_decoding(fuzz_env):
    client, archive, public, _ = fuzz_env
    for size in (
        "^99999,",
        "^,99999",
        "^99999,99999",
        "^pct:100000",
        "^!99999,99999",
        "^2000,2000",
    ):
        resp = fetch(client, archive, f"/iiif/3/{public}/full/{q(size)}/0/default.jpg")
        assert resp.status_code == 400
        assert b"max" in resp.data
