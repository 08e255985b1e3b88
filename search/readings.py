"""Readings, normalised forms and romaji keys of Japanese text, from SudachiPy.

A visitor on a phone types kana before the IME turns it into kanji, or romaji, or a
spelling the curator did not use. So every title, creator, keyword, object type and
material gets a reading (九谷焼 -> クタニヤキ) from Sudachi's core dictionary (shipped
in the ``sudachidict-core`` package, nothing downloaded), unless the curator gave one
(``title_kana``: the curator's reading wins). Sudachi's normalised forms fold spelling
variants (やきもの, 焼物, 焼き物 -> 焼き物; 附属 -> 付属) the same way at index and at
query time, on top of the old kanji forms of ``kanji_variants.txt``.

Romaji is matched through one key function, ``romaji_key``, applied to the Hepburn
spelling of the readings at index time and to what a visitor types at query time:
Hepburn, Kunrei and Nihon-shiki spellings (shi/si, chi/ti, tsu/tu, fu/hu, ji/zi) and
every common way of writing a long vowel (ō, ou, oo, oh, o) give the same key, so
``kyoka``, ``kyouka`` and ``kyōka`` all find 鏡花 (キョウカ).

The analyser is built once per process and per thread (a Sudachi tokenizer is not
shared between threads).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .text import fold, load_variants

# Record fields that get a reading, and the curator's field that overrides it.
READING_FIELDS: dict[str, str | None] = {
    "title": "title_kana",
    "creator": None,
    "keywords": None,
    "object_type": None,
    "material": None,
}
# Sudachi limits one input to about 49,000 bytes; longer text is cut into pieces.
_MAX_CHARS = 4000
_SKIP_POS = {"助詞", "助動詞", "補助記号", "空白", "記号"}  # no romaji key of their own
_UNREAD_POS = {"補助記号", "空白", "記号"}  # no reading either
_KATAKANA_RE = re.compile(r"^[\u30a1-\u30fa\u30fc]+$")
_KANA_RE = re.compile(r"^[\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fc\u30fd\u30fe]+$")
_JAPANESE_RE = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_VARIANTS = str.maketrans(load_variants())

_local = threading.local()


def _tokenizer() -> Any:
    """This thread's Sudachi tokenizer (mode C: the longest units, 九谷焼 whole)."""
    tokenizer = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        from sudachipy import SplitMode

        dictionary = _dictionary()
        tokenizer = dictionary.tokenizer(SplitMode.C)
        _local.tokenizer = tokenizer
        _local.mode_a = SplitMode.A
    return tokenizer


_dictionary_lock = threading.Lock()
_dictionary_object: Any = None


def _dictionary() -> Any:
    global _dictionary_object
    with _dictionary_lock:
        if _dictionary_object is None:
            from sudachipy import Dictionary

            _dictionary_object = Dictionary(dict="core")
        return _dictionary_object


def _prepare(text: str) -> str:
    """NFKC and the new kanji forms: what Sudachi's dictionary knows best."""
    return unicodedata.normalize("NFKC", text).translate(_VARIANTS)


def has_japanese(text: str) -> bool:
    return bool(_JAPANESE_RE.search(text))


@dataclass(frozen=True)
class Morpheme:
    surface: str
    reading: str  # katakana; "" when the dictionary has none
    normalized: str
    parts: tuple[str, ...]  # readings of the short units (mode A), for romaji keys
    skip: bool  # particles, symbols, spaces: no romaji key of their own


def _reading_of(morpheme: Any) -> str:
    surface = morpheme.surface()
    if _KANA_RE.match(surface):
        return surface
    reading = morpheme.reading_form()
    if morpheme.is_oov() or not _KATAKANA_RE.match(reading):
        return ""
    return reading


_CACHED_CHARS = 80  # short values (types, materials, names) repeat a lot: cache them


def analyse(text: str) -> tuple[Morpheme, ...]:
    """Morphemes of ``text``."""
    if not text or not has_japanese(text):
        return ()
    if len(text) <= _CACHED_CHARS:
        return _analyse_cached(text)
    return _analyse(text)


@lru_cache(maxsize=50_000)
def _analyse_cached(text: str) -> tuple[Morpheme, ...]:
    return _analyse(text)


def _analyse(text: str) -> tuple[Morpheme, ...]:
    tokenizer = _tokenizer()
    out: list[Morpheme] = []
    prepared = _prepare(text)
    for start in range(0, len(prepared), _MAX_CHARS):
        for m in tokenizer.tokenize(prepared[start : start + _MAX_CHARS]):
            pos = m.part_of_speech()[0]
            reading = "" if pos in _UNREAD_POS else _reading_of(m)
            subs = m.split(_local.mode_a)
            parts = tuple(_reading_of(s) for s in subs) if len(subs) > 1 else ()
            out.append(Morpheme(m.surface(), reading, m.normalized_form(), parts, pos in _SKIP_POS))
    return tuple(out)


def reading(text: str) -> str:
    """The katakana reading of Japanese text (九谷焼 -> クタニヤキ); "" if none is known.

    Words the dictionary cannot read are left out, with a space in their place."""
    pieces: list[str] = []
    for m in analyse(text):
        if m.reading:
            pieces.append(m.reading)
        elif pieces and pieces[-1] != " ":
            pieces.append(" ")
    return "".join(pieces).strip()


def normalized(text: str) -> str:
    """Text with each word in Sudachi's normalised form (やきもの -> 焼き物), folded."""
    morphemes = analyse(text)
    if not morphemes:
        return ""
    return fold("".join(m.normalized for m in morphemes))


# -- romaji ---------------------------------------------------------------------------------

_HEPBURN = {
    "あ": "a", "い": "i", "う": "u", "え": "e", "お": "o",
    "か": "ka", "き": "ki", "く": "ku", "け": "ke", "こ": "ko",
    "が": "ga", "ぎ": "gi", "ぐ": "gu", "げ": "ge", "ご": "go",
    "さ": "sa", "し": "shi", "す": "su", "せ": "se", "そ": "so",
    "ざ": "za", "じ": "ji", "ず": "zu", "ぜ": "ze", "ぞ": "zo",
    "た": "ta", "ち": "chi", "つ": "tsu", "て": "te", "と": "to",
    "だ": "da", "ぢ": "ji", "づ": "zu", "で": "de", "ど": "do",
    "な": "na", "に": "ni", "ぬ": "nu", "ね": "ne", "の": "no",
    "は": "ha", "ひ": "hi", "ふ": "fu", "へ": "he", "ほ": "ho",
    "ば": "ba", "び": "bi", "ぶ": "bu", "べ": "be", "ぼ": "bo",
    "ぱ": "pa", "ぴ": "pi", "ぷ": "pu", "ぺ": "pe", "ぽ": "po",
    "ま": "ma", "み": "mi", "む": "mu", "め": "me", "も": "mo",
    "や": "ya", "ゆ": "yu", "よ": "yo",
    "ら": "ra", "り": "ri", "る": "ru", "れ": "re", "ろ": "ro",
    "わ": "wa", "ゐ": "i", "ゑ": "e", "を": "o", "ん": "n", "ゔ": "vu",
    "ぁ": "a", "ぃ": "i", "ぅ": "u", "ぇ": "e", "ぉ": "o", "ゎ": "wa",
    "ゃ": "ya", "ゅ": "yu", "ょ": "yo",
}  # fmt: skip
_SMALL_Y = {"ゃ": "a", "ゅ": "u", "ょ": "o"}


def hepburn(kana: str) -> str:
    """Hepburn romaji of kana (katakana or hiragana): キョウカ -> kyouka."""
    hira = fold(kana)
    out: list[str] = []
    double = False
    for char in hira:
        if char == "っ":
            double = True
            continue
        if char in _SMALL_Y and out:
            prev = out[-1]
            if prev.endswith("i") and len(prev) > 1:  # き+ゃ -> kya, し+ゃ -> sha
                stem = prev[:-1]
                out[-1] = stem + ("" if stem.endswith(("sh", "ch", "j")) else "y") + _SMALL_Y[char]
                continue
        if char == "ー" and out:
            out.append(out[-1][-1])  # the long-vowel mark repeats the vowel
            continue
        syllable = _HEPBURN.get(char)
        if syllable is None:
            out.append(" ")
            double = False
            continue
        if double:
            syllable = ("t" if syllable.startswith("ch") else syllable[0]) + syllable
            double = False
        out.append(syllable)
    return "".join(out)


# Spelling systems and long vowels to one key, applied in this order.
_KEY_RULES = [
    (re.compile(r"[^a-z]"), ""),
    (re.compile(r"shi"), "si"),
    (re.compile(r"sh"), "sy"),
    (re.compile(r"chi"), "ti"),
    (re.compile(r"ch"), "ty"),
    (re.compile(r"tsu"), "tu"),
    (re.compile(r"fu"), "hu"),
    (re.compile(r"dzu|du"), "zu"),
    (re.compile(r"ji|di"), "zi"),
    (re.compile(r"j|dy"), "zy"),
    (re.compile(r"m(?=[bmp])"), "n"),
    (re.compile(r"nn"), "n"),
    (re.compile(r"wo"), "o"),
    (re.compile(r"oh(?![aeiouy])"), "o"),
    (re.compile(r"o[uo]"), "o"),
    (re.compile(r"([aeiu])\1"), r"\1"),
]


@lru_cache(maxsize=100_000)
def romaji_key(latin: str) -> str:
    """The matching key of a romaji word, the same for every common spelling of it:
    Kyōka, kyouka, kyooka and kyoka -> kyoka; shinbun, shimbun, sinbun -> sinbun."""
    key = fold(latin)
    for pattern, replacement in _KEY_RULES:
        key = pattern.sub(replacement, key)
    return key


def romaji_keys(text: str) -> list[str]:
    """Romaji keys of Japanese text's words, of their short parts and of runs of words
    (泉鏡花 -> izumikyoka, izumi, kyoka), for prefix matching; particles have none."""
    keys: list[str] = []
    run: list[str] = []  # readings of consecutive words: 大樋+焼 -> ohiyaki as well
    for m in (*analyse(text), None):
        if m is None or m.skip or not m.reading:
            if len(run) > 1:
                keys.append(romaji_key(hepburn("".join(run))))
            run = []
            continue
        run.append(m.reading)
        for kana in (m.reading, *m.parts):
            if kana:
                keys.append(romaji_key(hepburn(kana)))
    return [key for key in dict.fromkeys(keys) if key]


def reading_keys(kana: str, texts: list[str]) -> list[str]:
    """Romaji keys of a curator's reading (``title_kana``) of ``texts``: each spaced part
    whole, plus the analyser's word keys of the texts where its reading agrees with the
    curator's (otherwise the curator's reading wins, and the analyser's is left out)."""
    keys = [romaji_key(hepburn(part)) for part in kana.split()]
    own = fold("".join(kana.split()))
    for text in texts:
        if fold(reading(text).replace(" ", "")) in own:
            keys.extend(romaji_keys(text))
    return [key for key in dict.fromkeys(keys) if key]


def record_readings(record: Any) -> dict[str, dict[str, str]]:
    """Per field, its reading and where it came from: ``curator`` (the record's own
    reading field) or ``sudachi`` (the analyser). Fields without Japanese have none."""
    out: dict[str, dict[str, str]] = {}
    for name, curator_field in READING_FIELDS.items():
        value = record.get(name)
        if not value:
            continue
        own = record.get(curator_field) if curator_field else None
        if own:
            out[name] = {"reading": str(own), "source": "curator"}
            continue
        values = value if isinstance(value, list | tuple) else [value]
        machine = "　".join(r for r in (reading(str(v)) for v in values) if r)
        if machine:
            out[name] = {"reading": machine, "source": "sudachi"}
    return out
