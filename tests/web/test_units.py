"""Pure parts of the site: content state, search state, languages, rights and downloads."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from archive.errors import BadRequest
from archive.records import ImageRef, Record
from web import content_state
from web.i18n import TEXTS, _accept_language, era_label, translate
from web.present import downloads, fit, rights_info, safe_link
from web.search_state import SearchState, pages
from web.site import safe_highlight

MANIFEST = "https://museum.example.jp/iiif/3/manifest/noh-museum_N-12"
CANVAS = MANIFEST + "/canvas/2"


# --- IIIF Content State 1.0 ---------------------------------------------------------------------
def test_content_state_round_trip_is_base64url_without_padding():
    view = content_state.View(MANIFEST, CANVAS, (10, 20, 300, 400))
    encoded = content_state.encode(view)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert data["type"] == "Annotation" and data["motivation"] == ["contentState"]
    assert data["target"]["id"] == CANVAS + "#xywh=10,20,300,400"
    assert data["target"]["partOf"] == [{"id": MANIFEST, "type": "Manifest"}]
    assert content_state.decode(encoded) == view


def test_content_state_accepts_a_bare_canvas_target_and_padding():
    raw = json.dumps(
        {"id": CANVAS, "type": "Canvas", "partOf": [{"id": MANIFEST, "type": "Manifest"}]}
    ).encode()
    padded = base64.urlsafe_b64encode(raw).decode()
    assert content_state.decode(padded) == content_state.View(MANIFEST, CANVAS, None)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "!!!",
        "e30",
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(b'{"type":"Manifest","id":"x"}').decode(),
        base64.urlsafe_b64encode(
            json.dumps(
                {"id": CANVAS + "#xywh=1,2,0,4", "type": "Canvas", "partOf": [{"id": MANIFEST}]}
            ).encode()
        ).decode(),
        base64.urlsafe_b64encode(
            json.dumps(
                {"id": CANVAS + "#t=1,2", "type": "Canvas", "partOf": [{"id": MANIFEST}]}
            ).encode()
        ).decode(),
        "A" * 5000,
    ],
)
def test_content_state_rejects_what_it_cannot_show(value):
    with pytest.raises(content_state.ContentStateError):
        content_state.decode(value)


@given(st.text(max_size=300))
def test_content_state_decode_never_raises_anything_else(value):
    try:
        content_state.decode(value)
    except content_state.ContentStateError:
        pass


@given(st.binary(max_size=300))
def test_content_state_decode_of_any_bytes(raw):
    try:
        content_state.decode(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    except content_state.ContentStateError:
        pass


# --- search state in the URL ---------------------------------------------------------------------
def test_search_state_round_trips_through_its_url():
    args = MultiDict(
        [
            ("q", " 能面  小面 "),
            ("institution", "noh-museum"),
            ("era", "江戸時代"),
            ("era", "明治時代"),
            ("year_from", "-300"),
            ("year_to", "1868"),
            ("sort", "date_asc"),
            ("size", "50"),
            ("page", "3"),
            ("view", "list"),
            ("unknown", "ignored"),
        ]
    )
    state = SearchState.from_args(args)
    assert state.q == "能面 小面" and state.filters["era"] == ("江戸時代", "明治時代")
    assert state.year_from == -300 and state.page == 3
    again = SearchState.from_args(MultiDict(state.params()))
    assert again == state


def test_filter_changes_go_back_to_page_one():
    state = SearchState.from_args(MultiDict([("page", "4"), ("era", "江戸時代")]))
    assert state.with_filter("institution", "noh-museum").page == 1
    removed = state.without_filter("era", "江戸時代")
    assert removed.filters == {} and removed.page == 1 and removed.qs() == ""


@pytest.mark.parametrize(
    "pairs, parameter",
    [
        ([("page", "0")], "page"),
        ([("page", "１")], "page"),
        ([("size", "21")], "size"),
        ([("sort", "x")], "sort"),
        ([("view", "x")], "view"),
        ([("year_from", "12345")], "year_from"),
        ([("q", "x" * 501)], "q"),
        ([("era", f"x{i}") for i in range(21)], "era"),
    ],
)
def test_search_state_names_the_bad_parameter(pairs, parameter):
    with pytest.raises(BadRequest) as info:
        SearchState.from_args(MultiDict(pairs))
    assert info.value.parameter == parameter


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["q", "page", "size", "sort", "view", "era", "year_from", "year_to", "institution"]
            ),
            st.text(max_size=12),
        ),
        max_size=8,
    )
)
def test_search_state_parses_or_says_which_parameter(pairs):
    try:
        SearchState.from_args(MultiDict(pairs))
    except BadRequest as exc:
        assert exc.parameter


def test_pages_show_ends_and_a_window():
    assert pages(1, 1) == [1]
    assert pages(6, 40) == [1, None, 4, 5, 6, 7, 8, None, 40]
    assert pages(2, 5) == [1, 2, 3, 4, 5]


# --- languages -----------------------------------------------------------------------------------
def test_every_ui_text_exists_in_both_languages():
    for key, entry in TEXTS.items():
        assert entry.get("ja") and entry.get("en"), key
        assert translate(key, "en") == entry["en"]


@pytest.mark.parametrize(
    "header, lang",
    [
        ("ja,en;q=0.8", "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("fr-FR, ja;q=0.1", "ja"),
        ("fr, de", None),
        ("", None),
        ("en;q=0, ja;q=0.2", "ja"),
        ("en;q=abc", None),
    ],
)
def test_accept_language(header, lang):
    assert _accept_language(header) == lang


def test_era_labels():
    assert era_label("江戸時代", "en") == "Edo period"
    assert era_label("19世紀", "en") == "19th century"
    assert era_label("21世紀", "en") == "21st century"
    assert era_label("江戸時代", "ja") == "江戸時代"


# --- rights, downloads, links --------------------------------------------------------------------
@pytest.mark.parametrize(
    "uri, code, tier, cap",
    [
        ("http://creativecommons.org/publicdomain/zero/1.0/", "CC0", "open", None),
        ("https://creativecommons.org/licenses/by/4.0/", "CC BY 4.0", "open", None),
        (
            "http://creativecommons.org/licenses/by-nc-nd/4.0/",
            "CC BY-NC-ND 4.0",
            "conditions",
            None,
        ),
        ("http://rightsstatements.org/vocab/InC/1.0/", "InC", "restricted", 800),
        ("http://rightsstatements.org/vocab/InC-EDU/1.0/", "InC-EDU", "restricted", 800),
        ("http://rightsstatements.org/vocab/NoC-NC/1.0/", "NoC-NC", "conditions", None),
        ("http://rightsstatements.org/vocab/UND/1.0/", "UND", "conditions", 1600),
        ("http://rightsstatements.org/vocab/NKC/1.0/", "NKC", "open", None),
    ],
)
def test_rights_badges_and_download_limits(uri, code, tier, cap):
    info = rights_info(uri)
    assert (info.code, info.tier, info.max_download) == (code, tier, cap)
    assert info.label("ja") and info.label("en")


def _record(cap: int = 0) -> tuple[Record, ImageRef]:
    image = ImageRef(id="noh-museum_N-1~0123456789", source="a.jpg", width=4000, height=3000)
    rec = Record(
        id="noh-museum_N-1",
        institution="noh-museum",
        local_id="N-1",
        fields={"title": "t"},
        max_image_size=cap,
        images=[image],
    )
    return rec, image


def test_downloads_follow_rights_and_the_cap():
    rec, image = _record()
    open_sizes = downloads(
        "", image, rec, rights_info("http://creativecommons.org/publicdomain/zero/1.0/")
    )
    assert [(d.key, d.width) for d in open_sizes] == [
        ("small", 800),
        ("medium", 1600),
        ("large", 4000),
    ]
    assert open_sizes[-1].url.endswith("/full/max/0/default.jpg")
    closed = downloads("", image, rec, rights_info("http://rightsstatements.org/vocab/InC/1.0/"))
    assert [(d.key, d.width) for d in closed] == [("large", 800)]
    capped_rec, capped_img = _record(cap=1200)
    capped = downloads(
        "", capped_img, capped_rec, rights_info("http://creativecommons.org/licenses/by/4.0/")
    )
    assert [(d.key, d.width, d.height) for d in capped] == [
        ("small", 800, 600),
        ("large", 1200, 900),
    ]
    assert capped[-1].url.endswith("/full/!1200,1200/0/default.jpg")


def test_fit_never_upscales():
    assert fit(4000, 3000, 400) == (400, 300)
    assert fit(200, 100, 400) == (200, 100)


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://example.org/", True),
        ("http://example.org/", True),
        ("javascript:alert(1)", False),
        (" JavaScript:alert(1)", False),
        ("//evil", False),
        ("data:text/html,x", False),
        (None, False),
        ("", False),
    ],
)
def test_only_http_links(url, ok):
    assert safe_link(url) == (url if ok else None)


@pytest.mark.parametrize(
    "snippet, expected",
    [
        ("小<mark>面</mark>の解説", "小<mark>面</mark>の解説"),
        ("<mark>a</mark> &amp; b", "<mark>a</mark> &amp; b"),
        ("<script>x</script><mark>y</mark>", "&lt;script&gt;x&lt;/script&gt;<mark>y</mark>"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    ],
)
def test_highlights_keep_only_mark(snippet, expected):
    assert str(safe_highlight(snippet)) == expected


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["q", "institution", "era", "creator", "sort", "page"]),
            st.sampled_from(["a", "b", "江戸時代", "x y", "&=?", "relevance", "2"]),
        ),
        max_size=6,
    ),
    st.sampled_from(["institution", "era", "creator", "rights"]),
    st.sampled_from(["a", "江戸時代", "&=?"]),
)
def test_toggle_qs_equals_building_the_state(pairs, name, value):
    try:
        state = SearchState.from_args(MultiDict(pairs))
    except BadRequest:
        return
    expected = (
        state.without_filter(name, value)
        if state.has(name, value)
        else state.with_filter(name, value)
    )
    assert state.toggle_qs(name, value) == expected.qs()


def test_site_cache_serves_stale_while_one_thread_refreshes():
    import threading
    import time

    from web.site import _TTLCache

    cache = _TTLCache(0.01)
    calls: list[int] = []
    release = threading.Event()

    def make() -> int:
        calls.append(1)
        if len(calls) > 1:
            release.wait(5)
        return len(calls)

    assert cache.get("k", make) == 1
    time.sleep(0.02)
    assert cache.get("k", make) == 1  # expired: the old value, at once
    assert cache.get("k", make) == 1  # still refreshing: no second refresh started
    release.set()
    deadline = time.monotonic() + 5
    while cache.get("k", make) == 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("k", make) >= 2
    cache.clear()
    assert cache.get("k", lambda: "fresh") == "fresh"


def test_site_cache_clear_wins_over_a_refresh_already_running():
    """After clear() (new data), a refresh that started before must not put old data back."""
    import threading
    import time

    from web.site import _TTLCache

    cache = _TTLCache(0.01)
    started, release = threading.Event(), threading.Event()

    def old_data() -> str:
        if started.is_set():
            release.wait(5)
        started.set()
        return "old"

    assert cache.get("k", old_data) == "old"
    time.sleep(0.02)
    assert cache.get("k", old_data) == "old"  # expired: a refresh starts and blocks
    cache.clear()
    release.set()
    deadline = time.monotonic() + 5
    while cache._refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("k", lambda: "new") == "new"


def test_site_cache_refreshes_when_the_version_moves_but_not_more_often_than_fresh():
    """Keyed on the archive's version (generation() on every node): a change refreshes an
    entry long before it expires, and one younger than ``fresh`` is served as it is."""
    import time

    from web.site import _TTLCache

    version = [1]
    cache = _TTLCache(3600, lambda: version[0], fresh=0.05)
    assert cache.get("k", lambda: "one") == "one"
    assert cache.get("k", lambda: "two") == "one"  # same version: kept
    version[0] = 2
    assert cache.get("k", lambda: "two") == "one"  # younger than fresh: kept
    time.sleep(0.06)
    assert cache.get("k", lambda: "two") == "one"  # stale: served while refreshed
    deadline = time.monotonic() + 5
    while cache.get("k", lambda: "two") != "two" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("k", lambda: "three") == "two"


def test_site_cache_without_a_readable_version_goes_by_age():
    from web.site import _TTLCache

    def away() -> int:
        raise RuntimeError("catalog away")

    cache = _TTLCache(3600, away, fresh=0)
    assert cache.get("k", lambda: "one") == "one"
    assert cache.get("k", lambda: "two") == "one"


def test_featured_objects_take_turns_across_institutions():
    from web.site import _spread

    recs = [
        Record(id=f"{inst}_X-{n}", institution=inst, local_id=f"X-{n}", fields={})
        for inst, n in [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("c", 1), ("c", 2)]
    ]
    assert _spread(recs, 4) == ["a_X-1", "b_X-1", "c_X-1", "a_X-2"]
    assert len(_spread(recs, 10)) == 6
