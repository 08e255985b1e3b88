"""How text becomes searchable: folding and tokens, the same at index and at query time.

``fold`` makes the forms a Japanese or English reader treats as the same letter equal:
NFKC (full-width ＡＢＣ and half-width ｶﾀｶﾅ), case folding, katakana to hiragana (so a
kana query finds both scripts and the ``title_kana`` reading), the old kanji forms of
``kanji_variants.txt`` to the new ones (NFKC leaves 國, 學, 櫻 alone) and Latin
diacritics (Tōkyō = tokyo).

``tokens`` cuts folded text the way Elasticsearch's ``cjk_bigram`` does, plus one
unigram at the end of each CJK run: a run 金箔押 gives 金箔 箔押 押. A query of two or
more characters is then a phrase of its bigrams (an exact substring match), and a
one-character query is a prefix of a token (刀*), which every occurrence of 刀 starts.
Latin words are stemmed with Snowball English (lacquered, lacquers -> lacquer).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import snowballstemmer

_VARIANTS_FILE = Path(__file__).with_name("kanji_variants.txt")

# Hiragana, katakana (with ー, ヽヾ, ヿ), CJK ideographs and 々〆〇ヶ: text cut into bigrams.
# Voicing marks (゛゜) and the middle dot (・) separate, as they do in SQLite's unicode61.
_CJK = (
    "\u3005-\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
)
_RUN_RE = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")
_CJK_RE = re.compile(rf"[{_CJK}]")


def load_variants(path: Path = _VARIANTS_FILE) -> dict[str, str]:
    """Old form -> new form, from the data file (lines ``<old><new>``; ``#`` comments)."""
    table: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if len(entry) != 2:
            raise ValueError(f"{path}:{number}: expected two characters, got {entry!r}")
        table[entry[0]] = entry[1]
    return table


def _build_table() -> dict[int, str]:
    table: dict[int, str] = {}
    # Katakana ァ..ヶ and ヽヾ to hiragana (ヷ-ヺ have no hiragana twin and stay).
    for code in range(0x30A1, 0x30F7):
        table[code] = chr(code - 0x60)
    table[0x30FD] = "\u309d"
    table[0x30FE] = "\u309e"
    for old, new in load_variants().items():
        table[ord(old)] = new
    # Latin letters with diacritics to their base letters (never kana: が keeps its dakuten).
    for code in (*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)):
        base = "".join(
            c for c in unicodedata.normalize("NFD", chr(code)) if not unicodedata.combining(c)
        )
        if len(base) == 1 and base != chr(code):  # one for one, so offsets stay valid
            table[code] = base.casefold()
    return table


FOLD_TABLE = _build_table()


def fold(text: str) -> str:
    """The search form of ``text``: compare and index this, never display it."""
    if not unicodedata.is_normalized("NFKC", text):  # the quick check is cheaper
        text = unicodedata.normalize("NFKC", text)
    return text.casefold().translate(FOLD_TABLE)


_KANA_VOICING = {"\u3099": "\u309b", "\u309a": "\u309c"}


def fold_with_map(text: str) -> tuple[str, list[int]]:
    """``fold`` plus, for each folded character, the index of the original one it came from.

    Used to put highlight marks back into the text as the curator wrote it. Folds one
    character at a time, then recomposes kana with separate voicing marks (ｶﾞ -> が).
    """
    folded = fold(text)
    if len(folded) == len(text) and unicodedata.is_normalized("NFKC", text):
        return folded, list(range(len(text)))  # one character for one: the usual case
    out: list[str] = []
    where: list[int] = []
    for index, char in enumerate(text):
        piece = fold(char)
        if piece in ("\u3099", "\u309a", " \u3099", " \u309a") and out:
            composed = unicodedata.normalize("NFC", out[-1] + piece.strip())
            if len(composed) == 1:
                out[-1] = composed
                continue
        for folded_char in piece:
            out.append(folded_char)
            where.append(index)
    return "".join(out), where


_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball English stem of a folded Latin word (digits and other scripts pass)."""
    if not word.isascii() or not word.isalpha():
        return word
    return _STEMMER.stemWord(word)


def is_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))


def runs(folded: str) -> list[tuple[bool, str]]:
    """(is CJK, run) pieces of folded text; punctuation and spaces separate runs."""
    return [(bool(cjk), cjk or word) for cjk, word in _RUN_RE.findall(folded)]


def tokens(folded: str) -> list[str]:
    """Index tokens of folded text: CJK bigrams plus a closing unigram, stemmed words."""
    out: list[str] = []
    for cjk, word in _RUN_RE.findall(folded):
        if cjk:
            out.extend(map(str.__add__, cjk, cjk[1:]))  # bigrams, in C
            out.append(cjk[-1])
        else:
            out.append(stem(word))
    return out


def index_text(text: str) -> str:
    """Text as stored in the FTS column: its tokens, space separated."""
    return " ".join(tokens(fold(text)))


def query_tokens(folded: str) -> tuple[list[str], bool]:
    """Tokens a query term must match consecutively, and whether the last is a prefix.

    Like ``tokens`` except that the last CJK run ends where the query ends, not where
    the text's run ends: 金箔 matches inside 金箔押, and 刀 alone becomes the prefix 刀*.
    """
    pieces = runs(folded)
    out: list[str] = []
    prefix = False
    for position, (cjk, run) in enumerate(pieces):
        last = position == len(pieces) - 1
        if not cjk:
            out.append(stem(run))
        elif len(run) == 1:
            out.append(run)
            prefix = last
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
            if not last:
                out.append(run[-1])
    return out, prefix
