"""English queries get their Japanese words from JMdict (search.lexicon), on the meaning
side only, and a lexicon that is missing or damaged never costs a query its answer."""

from __future__ import annotations

import sqlite3
import time

import pytest

from search import lexicon, vectors
from search.query import parse


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A lexicon distilled from the installed JMdict, in a folder of this module's own."""
    folder = tmp_path_factory.mktemp("lexicon")
    patch = pytest.MonkeyPatch()
    patch.setenv("ARCHIVE_LEXICON_DIR", str(folder))
    lexicon._local.__dict__.clear()
    lexicon._remembered.cache_clear()
    path = lexicon.build()
    yield path
    patch.undo()
    lexicon._local.__dict__.clear()
    lexicon._remembered.cache_clear()


def test_the_lexicon_is_distilled_from_the_installed_jmdict(built):
    assert lexicon.source() is not None  # jamdict-data, from PyPI
    assert built.parent == lexicon.cache_dir() and built.exists()
    db = sqlite3.connect(built)
    (count,) = db.execute("SELECT count(*) FROM words").fetchone()
    db.close()
    assert count > 100_000


@pytest.mark.parametrize(
    ("english", "japanese"),
    [
        ("vase", ["花瓶"]),
        ("folding screen", ["屏風"]),  # a phrase before its words
        ("Noh mask", ["能面"]),
        ("incense burner", ["香炉"]),  # the common word, not the rare 火取
        ("letter", ["手紙"]),  # the word whose first sense it is, not 紙面
        ("dolls", ["人形"]),  # plurals
        ("Ｆｏｌｄｉｎｇ　ＳＣＲＥＥＮ", ["屏風"]),  # full-width, as a Japanese IME types it
        ("the map of the castle town", ["地図", "城下町"]),  # no words for "the", "of"
    ],
)
def test_english_phrases_get_their_japanese_word(built, english, japanese):
    assert lexicon.translate(english) == japanese


@pytest.mark.parametrize(
    "text", ["九谷焼", "くたにやき", "", "   ", "!!!", "\u0301", "🍵", "x" * 5000]
)
def test_text_with_no_english_word_in_it_gets_nothing(built, text):
    assert lexicon.translate(text) == []


def test_the_embedded_text_of_an_english_query_carries_its_japanese(built):
    assert vectors.semantic_text(parse("tea vase")) == "tea vase お茶 花瓶"
    assert vectors.semantic_text(parse("九谷 vase")) == "九谷 vase 花瓶"
    assert vectors.semantic_text(parse("九谷焼")) == "九谷焼"
    # a quoted phrase or a field search must match as written: not widened at all
    assert vectors.semantic_text(parse('"folding screen"')) == ""
    assert vectors.semantic_text(parse("title:vase")) == ""


def test_without_a_lexicon_queries_are_embedded_as_typed_and_one_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_LEXICON_DIR", str(tmp_path))
    monkeypatch.setattr(lexicon, "_local", type(lexicon._local)())
    monkeypatch.setattr(lexicon, "_building", None)
    monkeypatch.setattr(lexicon, "_build_started", 0.0)
    assert not lexicon.path().exists()
    assert lexicon.translate("vase") == []  # at once: never waits for the build
    assert vectors.semantic_text(parse("vase")) == "vase"
    deadline = time.monotonic() + 120
    while not lexicon.path().exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    lexicon._building.join(timeout=60)
    assert lexicon.translate("vase") == ["花瓶"]


def test_a_build_that_fails_is_not_tried_again_on_every_query(tmp_path, monkeypatch):
    unwritable = tmp_path / "file-not-folder"
    unwritable.write_text("")
    monkeypatch.setenv("ARCHIVE_LEXICON_DIR", str(unwritable / "lexicon"))
    monkeypatch.setattr(lexicon, "_local", type(lexicon._local)())
    monkeypatch.setattr(lexicon, "_building", None)
    monkeypatch.setattr(lexicon, "_build_started", 0.0)
    assert lexicon.translate("vase") == []
    first = lexicon._building
    first.join(timeout=60)
    assert lexicon.translate("vase") == [] and lexicon.translate("bowl") == []
    assert lexicon._building is first  # no second build within RETRY_SECONDS


def test_a_damaged_lexicon_gives_no_translation_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_LEXICON_DIR", str(tmp_path))
    monkeypatch.setattr(lexicon, "_local", type(lexicon._local)())
    lexicon._remembered.cache_clear()
    lexicon.path().write_bytes(b"not a database" * 100)
    assert lexicon.translate("vase") == []
    assert vectors.semantic_text(parse("vase")) == "vase"
    lexicon._remembered.cache_clear()
