"""The free-text query language, parsed once into clauses every backend translates.

Words are ANDed; ``"quoted phrases"`` (also 「」 and “”) match as written; ``field:word``
or ``field:"a phrase"`` searches one field; a leading ``-`` excludes. Everything is
folded (``search.text.fold``) before it is parsed, so ＴＩＴＬＥ：茶碗 works too.

A bare word also matches in two other ways (``search.readings``): a Japanese word by
its normalised form (焼物 finds やきもの), a Latin word as romaji against the readings
(kutani finds 九谷焼). Quoted phrases, field searches and exclusions match as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archive.errors import BadRequest

from . import readings
from .text import fold, query_tokens

# Query field name -> document fields it searches (the SQLite columns / cluster fields).
FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title", "kana"),
    "kana": ("kana",),
    "creator": ("creator",),
    "description": ("description",),
    "keywords": ("keywords",),
    "keyword": ("keywords",),
    "material": ("material",),
    "object_type": ("object_type",),
    "type": ("object_type",),
    "other": ("other",),
}
MAX_CLAUSES = 32
MAX_QUERY_LENGTH = 500

_QUOTES = str.maketrans({"「": '"', "」": '"', "“": '"', "”": '"', "『": '"', "』": '"'})
_CLAUSE_RE = re.compile(r'(-?)(?:([a-z_]+):)?(?:"([^"]*)"?|(\S+))')


@dataclass(frozen=True)
class Clause:
    """One AND-ed part of a query: the folded text, its tokens and where to look."""

    text: str  # folded
    tokens: tuple[str, ...]
    prefix: bool  # the last token is a prefix (a one-character CJK ending)
    fields: tuple[str, ...] = ()  # empty: every text field
    phrase: bool = False
    negate: bool = False
    norm: str = ""  # folded normalised form, when it differs from ``text``
    norm_tokens: tuple[str, ...] = ()
    norm_prefix: bool = False
    romaji: str = ""  # romaji key (search.readings.romaji_key) of a Latin word
    romaji_prefix: bool = False  # keys of 3+ letters match as prefixes, shorter exactly

    @property
    def widened(self) -> bool:
        """Whether the clause matches more than its own tokens (readings, normal forms)."""
        return bool(self.norm_tokens or self.romaji)


_LATIN_WORD_RE = re.compile(r"^[a-z]+(?:['-][a-z]+)*$")
MIN_ROMAJI = 2
MIN_ROMAJI_PREFIX = 3


def _alternatives(text: str, toks: list[str]) -> dict:
    """The normalised-form and romaji matches of a bare word."""
    out: dict = {}
    if _LATIN_WORD_RE.match(text):
        key = readings.romaji_key(text)
        if len(key) >= MIN_ROMAJI:
            out.update(romaji=key, romaji_prefix=len(key) >= MIN_ROMAJI_PREFIX)
    elif readings.has_japanese(text):
        norm = readings.normalized(text)
        norm_toks, norm_prefix = query_tokens(norm)
        if norm_toks and norm_toks != toks:
            out.update(norm=norm, norm_tokens=tuple(norm_toks), norm_prefix=norm_prefix)
    return out


def parse(q: str) -> list[Clause]:
    """Clauses of a query; raises BadRequest (parameter ``q``) when it is unusable."""
    if len(q) > MAX_QUERY_LENGTH:
        raise BadRequest(f"q is longer than {MAX_QUERY_LENGTH} characters", parameter="q")
    try:
        q.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no text anyone typed
        raise BadRequest("q is not valid Unicode text", parameter="q") from None
    folded = fold(q.translate(_QUOTES))
    clauses: list[Clause] = []
    for negate, field, quoted, bare in _CLAUSE_RE.findall(folded):
        text = quoted if quoted else bare
        if field and field not in FIELDS:
            # Not a field we know (a URL, a time 10:30): search the words as written.
            text, field = f"{field}:{text}", ""
        toks, prefix = query_tokens(text)
        if not toks:
            continue
        bare = not (quoted or field or negate)
        clauses.append(
            Clause(
                text=text.strip(),
                tokens=tuple(toks),
                prefix=prefix,
                fields=FIELDS.get(field, ()),
                phrase=bool(quoted),
                negate=bool(negate),
                **(_alternatives(text.strip(), toks) if bare else {}),
            )
        )
    if len(clauses) > MAX_CLAUSES:
        raise BadRequest(f"q has more than {MAX_CLAUSES} words", parameter="q")
    return clauses
