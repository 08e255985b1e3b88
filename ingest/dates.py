"""Dates as Japanese museums write them, normalised to a year range for sorting and facets.

``normalise_date("江戸時代後期")`` gives ``DateRange(1759, 1867, "江戸時代")``. The
original text is always kept for display; this range only orders and groups.
Understood: Western years, decades, centuries and ranges ("1895", "1890年代",
"19世紀後半", "1820～30年"); Japanese era names (gengō) with years in Arabic or
kanji numerals, including 元年 and trailing months/days ("明治10年", "寛政三年",
"令和元年", "永仁元年十月三日", "昭和30年代", "天保年間"); historical periods with
or without 時代 and a part ("江戸時代", "江戸後期", "桃山時代", "縄文時代").
Years before the common era are negative (紀元前3世紀 = -300..-201). Anything
else gives None: the record keeps its text and simply has no range.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

# Era names (gengō) and the Western year of their first year (元年), in order.
# Parallel Northern/Southern Court eras (1331-1392) are both listed; an era ends
# the year the next one in this list starts (the year of the change is in both).
ERAS: tuple[tuple[str, int], ...] = (
    ("大化", 645),
    ("白雉", 650),
    ("朱鳥", 686),
    ("大宝", 701),
    ("慶雲", 704),
    ("和銅", 708),
    ("霊亀", 715),
    ("養老", 717),
    ("神亀", 724),
    ("天平", 729),
    ("天平感宝", 749),
    ("天平勝宝", 749),
    ("天平宝字", 757),
    ("天平神護", 765),
    ("神護景雲", 767),
    ("宝亀", 770),
    ("天応", 781),
    ("延暦", 782),
    ("大同", 806),
    ("弘仁", 810),
    ("天長", 824),
    ("承和", 834),
    ("嘉祥", 848),
    ("仁寿", 851),
    ("斉衡", 854),
    ("天安", 857),
    ("貞観", 859),
    ("元慶", 877),
    ("仁和", 885),
    ("寛平", 889),
    ("昌泰", 898),
    ("延喜", 901),
    ("延長", 923),
    ("承平", 931),
    ("天慶", 938),
    ("天暦", 947),
    ("天徳", 957),
    ("応和", 961),
    ("康保", 964),
    ("安和", 968),
    ("天禄", 970),
    ("天延", 973),
    ("貞元", 976),
    ("天元", 978),
    ("永観", 983),
    ("寛和", 985),
    ("永延", 987),
    ("永祚", 989),
    ("正暦", 990),
    ("長徳", 995),
    ("長保", 999),
    ("寛弘", 1004),
    ("長和", 1012),
    ("寛仁", 1017),
    ("治安", 1021),
    ("万寿", 1024),
    ("長元", 1028),
    ("長暦", 1037),
    ("長久", 1040),
    ("寛徳", 1044),
    ("永承", 1046),
    ("天喜", 1053),
    ("康平", 1058),
    ("治暦", 1065),
    ("延久", 1069),
    ("承保", 1074),
    ("承暦", 1077),
    ("永保", 1081),
    ("応徳", 1084),
    ("寛治", 1087),
    ("嘉保", 1094),
    ("永長", 1096),
    ("承徳", 1097),
    ("康和", 1099),
    ("長治", 1104),
    ("嘉承", 1106),
    ("天仁", 1108),
    ("天永", 1110),
    ("永久", 1113),
    ("元永", 1118),
    ("保安", 1120),
    ("天治", 1124),
    ("大治", 1126),
    ("天承", 1131),
    ("長承", 1132),
    ("保延", 1135),
    ("永治", 1141),
    ("康治", 1142),
    ("天養", 1144),
    ("久安", 1145),
    ("仁平", 1151),
    ("久寿", 1154),
    ("保元", 1156),
    ("平治", 1159),
    ("永暦", 1160),
    ("応保", 1161),
    ("長寛", 1163),
    ("永万", 1165),
    ("仁安", 1166),
    ("嘉応", 1169),
    ("承安", 1171),
    ("安元", 1175),
    ("治承", 1177),
    ("養和", 1181),
    ("寿永", 1182),
    ("元暦", 1184),
    ("文治", 1185),
    ("建久", 1190),
    ("正治", 1199),
    ("建仁", 1201),
    ("元久", 1204),
    ("建永", 1206),
    ("承元", 1207),
    ("建暦", 1211),
    ("建保", 1213),
    ("承久", 1219),
    ("貞応", 1222),
    ("元仁", 1224),
    ("嘉禄", 1225),
    ("安貞", 1227),
    ("寛喜", 1229),
    ("貞永", 1232),
    ("天福", 1233),
    ("文暦", 1234),
    ("嘉禎", 1235),
    ("暦仁", 1238),
    ("延応", 1239),
    ("仁治", 1240),
    ("寛元", 1243),
    ("宝治", 1247),
    ("建長", 1249),
    ("康元", 1256),
    ("正嘉", 1257),
    ("正元", 1259),
    ("文応", 1260),
    ("弘長", 1261),
    ("文永", 1264),
    ("建治", 1275),
    ("弘安", 1278),
    ("正応", 1288),
    ("永仁", 1293),
    ("正安", 1299),
    ("乾元", 1302),
    ("嘉元", 1303),
    ("徳治", 1306),
    ("延慶", 1308),
    ("応長", 1311),
    ("正和", 1312),
    ("文保", 1317),
    ("元応", 1319),
    ("元亨", 1321),
    ("正中", 1324),
    ("嘉暦", 1326),
    ("元徳", 1329),
    ("元弘", 1331),
    ("正慶", 1332),
    ("建武", 1334),
    ("延元", 1336),
    ("暦応", 1338),
    ("興国", 1340),
    ("康永", 1342),
    ("貞和", 1345),
    ("正平", 1346),
    ("観応", 1350),
    ("文和", 1352),
    ("延文", 1356),
    ("康安", 1361),
    ("貞治", 1362),
    ("応安", 1368),
    ("建徳", 1370),
    ("文中", 1372),
    ("天授", 1375),
    ("永和", 1375),
    ("康暦", 1379),
    ("弘和", 1381),
    ("永徳", 1381),
    ("元中", 1384),
    ("至徳", 1384),
    ("嘉慶", 1387),
    ("康応", 1389),
    ("明徳", 1390),
    ("応永", 1394),
    ("正長", 1428),
    ("永享", 1429),
    ("嘉吉", 1441),
    ("文安", 1444),
    ("宝徳", 1449),
    ("享徳", 1452),
    ("康正", 1455),
    ("長禄", 1457),
    ("寛正", 1460),
    ("文正", 1466),
    ("応仁", 1467),
    ("文明", 1469),
    ("長享", 1487),
    ("延徳", 1489),
    ("明応", 1492),
    ("文亀", 1501),
    ("永正", 1504),
    ("大永", 1521),
    ("享禄", 1528),
    ("天文", 1532),
    ("弘治", 1555),
    ("永禄", 1558),
    ("元亀", 1570),
    ("天正", 1573),
    ("文禄", 1592),
    ("慶長", 1596),
    ("元和", 1615),
    ("寛永", 1624),
    ("正保", 1644),
    ("慶安", 1648),
    ("承応", 1652),
    ("明暦", 1655),
    ("万治", 1658),
    ("寛文", 1661),
    ("延宝", 1673),
    ("天和", 1681),
    ("貞享", 1684),
    ("元禄", 1688),
    ("宝永", 1704),
    ("正徳", 1711),
    ("享保", 1716),
    ("元文", 1736),
    ("寛保", 1741),
    ("延享", 1744),
    ("寛延", 1748),
    ("宝暦", 1751),
    ("明和", 1764),
    ("安永", 1772),
    ("天明", 1781),
    ("寛政", 1789),
    ("享和", 1801),
    ("文化", 1804),
    ("文政", 1818),
    ("天保", 1830),
    ("弘化", 1844),
    ("嘉永", 1848),
    ("安政", 1854),
    ("万延", 1860),
    ("文久", 1861),
    ("元治", 1864),
    ("慶応", 1865),
    ("明治", 1868),
    ("大正", 1912),
    ("昭和", 1926),
    ("平成", 1989),
    ("令和", 2019),
)
# Eras of the Southern Court, which run in parallel with the Northern list.
_SOUTHERN = {
    "元弘": 1334,
    "延元": 1340,
    "興国": 1346,
    "正平": 1370,
    "建徳": 1372,
    "文中": 1375,
    "天授": 1381,
    "弘和": 1384,
    "元中": 1392,
}


def _era_spans() -> dict[str, tuple[int, int | None]]:
    spans: dict[str, tuple[int, int | None]] = {}
    northern = [(n, y) for n, y in ERAS if n not in _SOUTHERN or n == "元弘"]
    for (name, start), nxt in zip(northern, [*northern[1:], None], strict=True):
        spans[name] = (start, nxt[1] if nxt else None)
    for name, end in _SOUTHERN.items():
        spans[name] = (dict(ERAS)[name], end)
    spans["天平感宝"] = (749, 749)
    return spans


ERA_SPANS = _era_spans()

# Historical periods as Japanese museums use them (conventional, approximate bounds).
# The first group does not overlap and names the facet value (``era``).
PERIODS: tuple[tuple[str, int, int | None], ...] = (
    ("旧石器時代", -38000, -14001),
    ("縄文時代", -14000, -301),
    ("弥生時代", -300, 249),
    ("古墳時代", 250, 591),
    ("飛鳥時代", 592, 709),
    ("奈良時代", 710, 793),
    ("平安時代", 794, 1184),
    ("鎌倉時代", 1185, 1332),
    ("南北朝時代", 1333, 1391),
    ("室町時代", 1392, 1572),
    ("安土桃山時代", 1573, 1602),
    ("江戸時代", 1603, 1867),
    ("明治時代", 1868, 1911),
    ("大正時代", 1912, 1925),
    ("昭和時代", 1926, 1988),
    ("平成時代", 1989, 2018),
    ("令和時代", 2019, None),
)
# Names as written -> (facet period, start, end). Bounds follow usage in the text,
# e.g. 室町時代 spans 1336-1573 though the facet calls its first decades 南北朝.
_PERIOD_ALIASES: dict[str, tuple[str, int, int | None]] = {
    **{name[:-2]: (name, start, end) for name, start, end in PERIODS},
    "室町": ("室町時代", 1336, 1573),
    "南北朝": ("南北朝時代", 1336, 1392),
    "戦国": ("室町時代", 1467, 1590),
    "桃山": ("安土桃山時代", 1573, 1615),
    "安土": ("安土桃山時代", 1573, 1582),
    "織豊": ("安土桃山時代", 1568, 1600),
    "徳川": ("江戸時代", 1603, 1867),
    "近世": ("江戸時代", 1573, 1867),
    "明治": ("明治時代", 1868, 1912),
    "大正": ("大正時代", 1912, 1926),
    "昭和": ("昭和時代", 1926, 1989),
    "平成": ("平成時代", 1989, 2019),
    "令和": ("令和時代", 2019, None),
}

# Part of a period, century or era as a fraction of it: (from, to).
PARTS: dict[str, tuple[float, float]] = {
    "初頭": (0.0, 0.2),
    "初め": (0.0, 0.2),
    "はじめ": (0.0, 0.2),
    "初期": (0.0, 1 / 3),
    "前期": (0.0, 1 / 3),
    "早期": (0.0, 1 / 3),
    "前半": (0.0, 0.5),
    "中期": (1 / 3, 2 / 3),
    "中頃": (1 / 3, 2 / 3),
    "中葉": (1 / 3, 2 / 3),
    "半ば": (1 / 3, 2 / 3),
    "後半": (0.5, 1.0),
    "後期": (2 / 3, 1.0),
    "晩期": (2 / 3, 1.0),
    "末期": (0.8, 1.0),
    "末葉": (0.8, 1.0),
    "末": (0.8, 1.0),
    "終わり": (0.8, 1.0),
}

_KANJI_DIGITS = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_NUM = r"(?:\d+|[〇零一二三四五六七八九十百千]+|元)"
_ERA_NAMES = "|".join(sorted(ERA_SPANS, key=len, reverse=True))
_PERIOD_NAMES = "|".join(sorted(_PERIOD_ALIASES, key=len, reverse=True))
_PART_NAMES = "|".join(sorted(PARTS, key=len, reverse=True))
_APPROX = r"(?:頃|ころ|ごろ|前後|か|\?|？)"
_RANGE_SPLIT = re.compile(
    r"\s*(?:[～〜~–—]|-(?=\D)|(?<=\D)-|(?<=\d{4})-(?=\d{3,4}(?:\D|$))|から|より|－)\s*"
)
_MONTH_DAY = rf"(?:{_NUM}月(?:{_NUM}日)?|[./-]\d{{1,2}}(?:[./-]\d{{1,2}})?)"

_RE_YEAR = re.compile(rf"^(紀元前|BC|B\.C\.)?\s*(\d{{1,4}})\s*年?{_MONTH_DAY}?(?:{_APPROX})?$")
_RE_DECADE = re.compile(rf"^(\d{{2,3}})0\s*(?:年代|s|'s)\s*({_PART_NAMES})?(?:{_APPROX})?$")
_RE_CENTURY = re.compile(rf"^(紀元前|BC)?\s*({_NUM})\s*世紀\s*({_PART_NAMES})?(?:{_APPROX})?$")
_RE_ERA_YEAR = re.compile(rf"^({_ERA_NAMES})\s*({_NUM})\s*年(?:{_MONTH_DAY})?(?:{_APPROX})?$")
_RE_ERA_DECADE = re.compile(rf"^({_ERA_NAMES})\s*({_NUM})\s*年代\s*({_PART_NAMES})?$")
_RE_ERA_ONLY = re.compile(rf"^({_ERA_NAMES})\s*(?:年間|期|時代)?\s*({_PART_NAMES})?(?:{_APPROX})?$")
_RE_PERIOD = re.compile(rf"^({_PERIOD_NAMES})\s*(?:時代)?\s*({_PART_NAMES})?(?:{_APPROX})?$")


@dataclass(frozen=True)
class DateRange:
    start: int
    end: int
    era: str | None  # facet period, e.g. "江戸時代"


def kanji_number(text: str) -> int | None:
    """'三' -> 3, '二十五' -> 25, '千八百九十五' -> 1895, '一八九五' -> 1895, '元' -> 1."""
    if text == "元":
        return 1
    if text.isdigit():
        return int(text)
    if all(ch in _KANJI_DIGITS for ch in text):  # positional: 一八九五
        return int("".join(str(_KANJI_DIGITS[ch]) for ch in text))
    total, current = 0, 0
    for ch in text:
        if ch in _KANJI_DIGITS:
            current = _KANJI_DIGITS[ch]
        elif ch in "十百千":
            unit = {"十": 10, "百": 100, "千": 1000}[ch]
            total += (current or 1) * unit
            current = 0
        else:
            return None
    return total + current


def _part(start: int, end: int, part: str | None) -> tuple[int, int]:
    if not part:
        return start, end
    lo, hi = PARTS[part]
    span = end - start + 1
    return start + int(span * lo), start + max(int(span * hi) - 1, int(span * lo))


def period_of(year: int) -> str | None:
    """The facet period a year falls in."""
    for name, start, end in PERIODS:
        if start <= year and (end is None or year <= end):
            return name
    return None


def _this_year() -> int:
    return date.today().year


def _parse_one(text: str, era_hint: str | None = None) -> tuple[int, int, str | None] | None:
    """One date expression (no range): (start, end, named period or None)."""
    if m := _RE_YEAR.match(text):
        year = int(m.group(2))
        if m.group(1):
            year = -year
        return year, year, None
    if m := _RE_DECADE.match(text):
        start = int(m.group(1)) * 10
        s, e = _part(start, start + 9, m.group(2))
        return s, e, None
    if m := _RE_CENTURY.match(text):
        n = kanji_number(m.group(2))
        if not n or n > 21:
            return None
        if m.group(1):
            start, end = -n * 100, -n * 100 + 99
        else:
            start, end = (n - 1) * 100 + 1, n * 100
        s, e = _part(start, end, m.group(3))
        return s, e, None
    if m := _RE_ERA_YEAR.match(text):
        return _era_year(m.group(1), m.group(2))
    if m := _RE_ERA_DECADE.match(text):
        era, n = m.group(1), kanji_number(m.group(2))
        if n is None:
            return None
        first = _era_year(era, str(max(n, 1)))
        if first is None:
            return None
        span_start, _, _ = first
        span_end = min(span_start + (9 if n else 8), ERA_SPANS[era][1] or _this_year())
        s, e = _part(span_start, span_end, m.group(3))
        return s, e, None
    if m := _RE_ERA_ONLY.match(text):
        era = m.group(1)
        start, end = ERA_SPANS[era]
        s, e = _part(start, end if end is not None else _this_year(), m.group(2))
        return s, e, None
    if m := _RE_PERIOD.match(text):
        name, start, end = _PERIOD_ALIASES[m.group(1)]
        s, e = _part(start, end if end is not None else _this_year(), m.group(2))
        return s, e, name
    if era_hint and (m := re.match(rf"^({_NUM})\s*年(?:{_MONTH_DAY})?(?:{_APPROX})?$", text)):
        return _era_year(era_hint, m.group(1))
    return None


def _era_year(era: str, number: str) -> tuple[int, int, str | None] | None:
    n = kanji_number(number)
    if n is None or n < 1:
        return None
    start, end = ERA_SPANS[era]
    year = start + n - 1
    if year > (end if end is not None else _this_year()):
        return None  # e.g. 明治50年: no such year
    # Modern eras name their own period (平成31年 is 平成, though 2019 is also 令和元年).
    named = f"{era}時代" if era in ("明治", "大正", "昭和", "平成", "令和") else None
    return year, year, named


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    text = re.sub(r"^(?:ca?\.|circa|約)\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\s*(?:頃|ころ|ごろ|か)$", "", text)
    return text.strip()


def normalise_date(text: str | None) -> DateRange | None:
    """Year range and facet period of a date as written, or None if not understood."""
    if not text or not text.strip():
        return None
    cleaned = _clean(text)
    # "明治10年(1877)": try without the parenthesis, then the parenthesis alone.
    if m := re.match(r"^(.*?)\s*\((.+?)\)$", cleaned):
        return normalise_date(m.group(1)) or normalise_date(m.group(2))
    # "文化・文政期": two eras joined.
    if m := re.match(rf"^({_ERA_NAMES})[・、]({_ERA_NAMES})\s*(?:年間|期|時代)?$", cleaned):
        a, b = ERA_SPANS[m.group(1)], ERA_SPANS[m.group(2)]
        return _finish(a[0], b[1] if b[1] is not None else _this_year(), None)
    one = _parse_one(cleaned)
    if one is not None:
        return _finish(*one)
    # "慶応4年/明治元年": the same date written two ways; keep what is understood.
    if "/" in cleaned and not re.search(r"\d/\d", cleaned):
        ranges = [r for r in map(normalise_date, cleaned.split("/")) if r]
        if not ranges:
            return None
        return _finish(min(r.start for r in ranges), max(r.end for r in ranges), ranges[0].era)
    parts = [p for p in _RANGE_SPLIT.split(cleaned) if p]
    if len(parts) != 2:
        return None
    return _parse_range(*parts)


def _parse_range(first: str, second: str) -> DateRange | None:
    """Two ends of a range; the second may lean on the first ("1820～30年", "明治10～20年",
    "江戸時代中期～後期")."""
    left = _parse_one(first)
    if left is None and second.endswith("年") and not first.endswith("年"):
        first += "年"  # "明治10～20年"
        left = _parse_one(first)
    if left is None:
        return None
    right = None
    era_hint = m.group(1) if (m := re.match(rf"^({_ERA_NAMES})", first)) else None
    bare = re.match(r"^(\d{1,3})\s*(年代|年)?$", second)
    if era_hint and bare and bare.group(2) == "年":
        right = _era_year(era_hint, bare.group(1))
    elif bare and left[0] >= 100 and len(bare.group(1)) < len(str(left[0])):
        digits = bare.group(1)
        end = left[0] - left[0] % (10 ** len(digits)) + int(digits)
        right = (end, end + (9 if bare.group(2) == "年代" else 0), None)
    elif m := re.match(rf"^({_PART_NAMES})$", second):
        base = _parse_one(re.sub(rf"(?:{_PART_NAMES})$", "", first))
        if base is not None:
            right = (*_part(base[0], base[1], m.group(1)), base[2])
    if right is None:
        right = _parse_one(second, era_hint)
    if right is None:
        return None
    # "鎌倉～室町時代": the left side's 時代 is implied; the named period is the first.
    start, end = left[0], max(right[1], left[1])
    if start > end:
        return None
    return _finish(start, end, left[2] or right[2])


def _finish(start: int, end: int, named: str | None) -> DateRange:
    era = named or period_of((start + end) // 2)
    return DateRange(start, end, era)
