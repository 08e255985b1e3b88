"""A synthetic archive: N institution folders holding M records in total, for scale tests.

Behind ``archive generate``. Each institution is exported the way a real one
might be (CSV in UTF-8 or CP932, TSV, JSON, JSON Lines), with its own Japanese
column names, and records whose bilingual metadata is composed from
vocabularies of object types, techniques, motifs, materials, makers and dates as
Japanese museums write them (明治10年, 寛政三年, 江戸時代後期, 19世紀後半, 1890年代...).
Images are small drawings of configurable size, each file distinct by default.

Deterministic: the same arguments and seed give the same bytes. Fast: 100,000
records with 64x64 images in well under a minute on one core.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import random
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image, ImageDraw

MARKER = ".synthetic"  # in every folder we write; only such folders are ever replaced
IMAGES_PER_DIR = 1000

# -- vocabularies: (japanese, kana reading, english) ------------------------------------------

Word = tuple[str, str, str]

DISTRICTS: list[tuple[str, str, str]] = [  # (ja, id slug, en)
    ("東山", "higashiyama", "Higashiyama"),
    ("西町", "nishimachi", "Nishimachi"),
    ("南部", "nanbu", "Nanbu"),
    ("北陵", "hokuryo", "Hokuryo"),
    ("中央", "chuo", "Chuo"),
    ("港", "minato", "Minato"),
    ("城址", "joshi", "Joshi"),
    ("河北", "kahoku", "Kahoku"),
    ("湯涌", "yuwaku", "Yuwaku"),
    ("卯辰", "utatsu", "Utatsu"),
    ("寺町", "teramachi", "Teramachi"),
    ("長町", "nagamachi", "Nagamachi"),
    ("大野", "ono", "Ono"),
    ("金石", "kanaiwa", "Kanaiwa"),
    ("森本", "morimoto", "Morimoto"),
    ("野田", "noda", "Noda"),
    ("浅野", "asano", "Asano"),
    ("犀川", "saigawa", "Saigawa"),
    ("本町", "honmachi", "Honmachi"),
    ("白山", "hakusan", "Hakusan"),
]


@dataclass(frozen=True)
class Kind:
    """A kind of institution and what it collects."""

    slug: str
    name_ja: str
    name_en: str
    objects: list[Word]
    techniques: list[Word]
    materials: list[Word]
    keywords: list[str]
    earliest: int = 1600  # no dates before this year: no Jomon haiku notebooks


CERAMICS = [
    ("皿", "さら", "dish"),
    ("大皿", "おおざら", "large dish"),
    ("鉢", "はち", "bowl"),
    ("壺", "つぼ", "jar"),
    ("瓶", "へい", "bottle"),
    ("茶碗", "ちゃわん", "tea bowl"),
    ("香炉", "こうろ", "incense burner"),
    ("花入", "はないれ", "flower vase"),
    ("徳利", "とっくり", "sake flask"),
    ("向付", "むこうづけ", "side dish"),
]
LACQUER = [
    ("硯箱", "すずりばこ", "writing box"),
    ("重箱", "じゅうばこ", "tiered box"),
    ("盆", "ぼん", "tray"),
    ("椀", "わん", "lidded bowl"),
    ("文箱", "ふばこ", "letter box"),
    ("棗", "なつめ", "tea caddy"),
    ("手箱", "てばこ", "cosmetic box"),
]
TEXTILES = [
    ("小袖", "こそで", "kosode robe"),
    ("打掛", "うちかけ", "uchikake wedding robe"),
    ("帯", "おび", "obi sash"),
    ("振袖", "ふりそで", "furisode"),
    ("風呂敷", "ふろしき", "wrapping cloth"),
    ("袱紗", "ふくさ", "gift cover"),
]
PAINTINGS = [
    ("掛軸", "かけじく", "hanging scroll"),
    ("屏風", "びょうぶ", "folding screen"),
    ("絵巻", "えまき", "handscroll"),
    ("扇面", "せんめん", "fan painting"),
    ("画帖", "がじょう", "album"),
    ("襖絵", "ふすまえ", "sliding-door painting"),
]
DOCUMENTS = [
    ("書状", "しょじょう", "letter"),
    ("日記", "にっき", "diary"),
    ("絵図", "えず", "map"),
    ("証文", "しょうもん", "deed"),
    ("帳簿", "ちょうぼ", "ledger"),
    ("草稿", "そうこう", "draft manuscript"),
    ("原稿", "げんこう", "manuscript"),
    ("句帖", "くちょう", "haiku notebook"),
]
ARCHAEOLOGY = [
    ("土器", "どき", "earthenware vessel"),
    ("土偶", "どぐう", "clay figurine"),
    ("石器", "せっき", "stone tool"),
    ("埴輪", "はにわ", "haniwa figure"),
    ("銅鏡", "どうきょう", "bronze mirror"),
    ("勾玉", "まがたま", "comma-shaped bead"),
    ("須恵器", "すえき", "Sue ware vessel"),
]
NOH = [
    ("能面", "のうめん", "Noh mask"),
    ("唐織", "からおり", "karaori robe"),
    ("長絹", "ちょうけん", "choken cloak"),
    ("中啓", "ちゅうけい", "Noh fan"),
    ("謡本", "うたいぼん", "chant book"),
    ("狂言面", "きょうげんめん", "Kyogen mask"),
]
FOLK = [
    ("鍬", "くわ", "hoe"),
    ("千歯扱き", "せんばこき", "threshing comb"),
    ("野良着", "のらぎ", "work jacket"),
    ("人形", "にんぎょう", "doll"),
    ("郷土玩具", "きょうどがんぐ", "folk toy"),
    ("飯櫃", "めしびつ", "rice tub"),
    ("行灯", "あんどん", "paper lantern"),
]
PHOTOS = [
    ("写真", "しゃしん", "photograph"),
    ("絵葉書", "えはがき", "picture postcard"),
    ("ポスター", "ぽすたー", "poster"),
    ("ガラス乾板", "がらすかんぱん", "glass plate negative"),
]

MOTIFS: list[Word] = [
    ("花鳥", "かちょう", "flowers and birds"),
    ("山水", "さんすい", "landscape"),
    ("松竹梅", "しょうちくばい", "pine, bamboo and plum"),
    ("秋草", "あきくさ", "autumn grasses"),
    ("龍", "りゅう", "dragon"),
    ("鳳凰", "ほうおう", "phoenix"),
    ("牡丹", "ぼたん", "peonies"),
    ("菊", "きく", "chrysanthemums"),
    ("桜", "さくら", "cherry blossoms"),
    ("波", "なみ", "waves"),
    ("唐草", "からくさ", "scrolling vines"),
    ("鶴亀", "つるかめ", "crane and tortoise"),
    ("雪景", "せっけい", "snow scene"),
    ("竹林", "ちくりん", "bamboo grove"),
    ("紅葉", "もみじ", "autumn maples"),
    ("千鳥", "ちどり", "plovers"),
    ("兎", "うさぎ", "rabbits"),
    ("亀甲", "きっこう", "tortoiseshell hexagons"),
    ("鱗", "うろこ", "scales"),
    ("宝尽", "たからづくし", "auspicious treasures"),
]

KINDS: list[Kind] = [
    Kind(
        "craft",
        "工芸館",
        "Crafts Museum",
        CERAMICS + LACQUER,
        [
            ("色絵", "いろえ", "overglaze enamels"),
            ("染付", "そめつけ", "underglaze blue"),
            ("青磁", "せいじ", "celadon"),
            ("金彩", "きんさい", "gold"),
            ("蒔絵", "まきえ", "maki-e"),
            ("螺鈿", "らでん", "mother-of-pearl inlay"),
            ("沈金", "ちんきん", "chinkin"),
        ],
        [("磁器", "", "porcelain"), ("陶器", "", "stoneware"), ("木胎漆塗", "", "lacquered wood")],
        ["九谷焼", "大樋焼", "加賀蒔絵", "輪島塗", "工芸"],
    ),
    Kind(
        "art",
        "美術館",
        "Art Museum",
        PAINTINGS + CERAMICS[:4],
        [
            ("紙本著色", "しほんちゃくしょく", "colour on paper"),
            ("絹本著色", "けんぽんちゃくしょく", "colour on silk"),
            ("水墨", "すいぼく", "ink"),
            ("金地", "きんじ", "gold ground"),
        ],
        [("紙", "", "paper"), ("絹", "", "silk"), ("金箔", "", "gold leaf")],
        ["狩野派", "琳派", "文人画", "日本画", "絵画"],
    ),
    Kind(
        "textile",
        "染織館",
        "Textile Museum",
        TEXTILES,
        [
            ("友禅", "ゆうぜん", "yuzen dyeing"),
            ("刺繍", "ししゅう", "embroidery"),
            ("絞り", "しぼり", "tie-dyeing"),
            ("摺箔", "すりはく", "impressed gold leaf"),
        ],
        [("絹", "", "silk"), ("木綿", "", "cotton"), ("麻", "", "hemp")],
        ["加賀友禅", "染織", "着物", "婚礼"],
    ),
    Kind(
        "literature",
        "文学館",
        "Literature Museum",
        DOCUMENTS[4:] + PHOTOS[:2],
        [
            ("自筆", "じひつ", "autograph"),
            ("ペン書", "ぺんがき", "pen"),
            ("毛筆", "もうひつ", "brush"),
        ],
        [
            ("原稿用紙", "", "manuscript paper"),
            ("和紙", "", "Japanese paper"),
            ("便箋", "", "letter paper"),
        ],
        ["小説", "詩", "俳句", "作家", "書簡"],
        earliest=1850,
    ),
    Kind(
        "archives",
        "公文書館",
        "Archives",
        DOCUMENTS[:4] + PHOTOS,
        [
            ("墨書", "ぼくしょ", "ink"),
            ("刷物", "すりもの", "print"),
            ("手彩色", "てさいしき", "hand-coloured"),
        ],
        [
            ("和紙", "", "Japanese paper"),
            ("洋紙", "", "Western paper"),
            ("印画紙", "", "photographic paper"),
        ],
        ["古文書", "町触", "城下町", "地図", "記録"],
        earliest=1850,
    ),
    Kind(
        "archaeology",
        "埋蔵文化財センター",
        "Archaeology Centre",
        ARCHAEOLOGY,
        [
            ("縄文", "じょうもん", "cord-marked"),
            ("彩文", "さいもん", "painted"),
            ("線刻", "せんこく", "incised"),
        ],
        [("土製", "", "clay"), ("石製", "", "stone"), ("青銅製", "", "bronze")],
        ["遺跡", "発掘", "出土品", "古墳", "考古"],
        earliest=-10000,
    ),
    Kind(
        "noh",
        "能楽館",
        "Noh Museum",
        NOH,
        [
            ("彩色", "さいしき", "painted"),
            ("金襴", "きんらん", "gold brocade"),
            ("木彫", "もくちょう", "carved"),
        ],
        [("檜", "", "cypress"), ("絹", "", "silk"), ("和紙", "", "Japanese paper")],
        ["能楽", "宝生流", "能面", "能装束", "狂言"],
    ),
    Kind(
        "folk",
        "民俗資料館",
        "Folk Museum",
        FOLK + PHOTOS[:1],
        [
            ("手作り", "てづくり", "handmade"),
            ("張子", "はりこ", "papier-mache"),
            ("刺し子", "さしこ", "sashiko stitching"),
        ],
        [("木", "", "wood"), ("鉄", "", "iron"), ("木綿", "", "cotton"), ("竹", "", "bamboo")],
        ["民具", "農具", "年中行事", "郷土玩具", "暮らし"],
    ),
]

FAMILY: list[Word] = [
    ("髙橋", "たかはし", "Takahashi"),
    ("山田", "やまだ", "Yamada"),
    ("中村", "なかむら", "Nakamura"),
    ("前田", "まえだ", "Maeda"),
    ("木村", "きむら", "Kimura"),
    ("宮﨑", "みやざき", "Miyazaki"),
    ("五十嵐", "いがらし", "Igarashi"),
    ("清水", "しみず", "Shimizu"),
    ("林", "はやし", "Hayashi"),
    ("松本", "まつもと", "Matsumoto"),
    ("吉田", "よしだ", "Yoshida"),
    ("森", "もり", "Mori"),
    ("石黒", "いしぐろ", "Ishiguro"),
    ("竹内", "たけうち", "Takeuchi"),
    ("久保", "くぼ", "Kubo"),
]
GIVEN: list[Word] = [
    ("九峰", "きゅうほう", "Kyuho"),
    ("雨山", "うざん", "Uzan"),
    ("道甫", "どうほ", "Doho"),
    ("秋声", "しゅうせい", "Shusei"),
    ("長左衛門", "ちょうざえもん", "Chozaemon"),
    ("光琳", "こうりん", "Korin"),
    ("鏡花", "きょうか", "Kyoka"),
    ("ふみ", "ふみ", "Fumi"),
    ("庄三", "しょうざ", "Shoza"),
    ("大峰", "たいほう", "Taiho"),
    ("静子", "しずこ", "Shizuko"),
    ("与三郎", "よさぶろう", "Yosaburo"),
    ("守景", "もりかげ", "Morikage"),
]

# Dates: (start year, length) of eras, and the periods as museums name them.
ERAS = [
    ("元禄", "Genroku", 1688, 16),
    ("享保", "Kyoho", 1716, 20),
    ("寛政", "Kansei", 1789, 12),
    ("文化", "Bunka", 1804, 14),
    ("天保", "Tenpo", 1830, 14),
    ("嘉永", "Kaei", 1848, 6),
    ("明治", "Meiji", 1868, 44),
    ("大正", "Taisho", 1912, 14),
    ("昭和", "Showa", 1926, 63),
    ("平成", "Heisei", 1989, 30),
]
# (japanese, english, start year): the start decides which kinds of object may carry it.
PERIODS = [
    ("縄文時代", "the Jomon period"),
    ("弥生時代", "the Yayoi period"),
    ("古墳時代", "the Kofun period"),
    ("奈良時代", "the Nara period"),
    ("平安時代", "the Heian period"),
    ("鎌倉時代", "the Kamakura period"),
    ("室町時代", "the Muromachi period"),
    ("桃山時代", "the Momoyama period"),
    ("江戸時代", "the Edo period"),
    ("江戸時代前期", "the early Edo period"),
    ("江戸時代中期", "the mid Edo period"),
    ("江戸時代後期", "the late Edo period"),
    ("明治時代", "the Meiji era"),
    ("大正時代", "the Taisho era"),
    ("昭和初期", "the early Showa era"),
    ("昭和後期", "the late Showa era"),
]
PERIOD_START = {
    "縄文時代": -10000,
    "弥生時代": -300,
    "古墳時代": 250,
    "奈良時代": 710,
    "平安時代": 794,
    "鎌倉時代": 1185,
    "室町時代": 1336,
    "桃山時代": 1573,
    "江戸時代": 1603,
    "江戸時代前期": 1603,
    "江戸時代中期": 1688,
    "江戸時代後期": 1780,
    "明治時代": 1868,
    "大正時代": 1912,
    "昭和初期": 1926,
    "昭和後期": 1955,
}
PAGED = {"句帖", "画帖", "帳簿", "日記", "謡本"}
CONTINUOUS = {"絵巻"}
STATES = [
    ("保存状態は良好である", "well preserved"),
    ("一部に修理の跡がある", "partly repaired"),
    ("箱書が付属する", "with an inscribed box"),
    ("旧家に伝来した", "handed down in an old family"),
]
KANJI_DIGITS = "〇一二三四五六七八九"

RIGHTS = [
    "http://rightsstatements.org/vocab/InC/1.0/",
    "http://rightsstatements.org/vocab/NoC-NC/1.0/",
    "https://creativecommons.org/publicdomain/mark/1.0/",
    "https://creativecommons.org/publicdomain/zero/1.0/",
    "https://creativecommons.org/licenses/by/4.0/",
    "https://creativecommons.org/licenses/by-sa/4.0/",
    "https://creativecommons.org/licenses/by-nc/4.0/",
]

# Each institution's system names its columns its own way (canonical field -> column).
COLUMN_SETS: list[dict[str, str]] = [
    {
        "id": "資料番号",
        "title": "名称",
        "title_kana": "名称よみ",
        "title_en": "英語名称",
        "creator": "作者",
        "creator_en": "作者（英語）",
        "date": "制作年代",
        "object_type": "分類",
        "object_type_en": "分類（英語）",
        "material": "材質・技法",
        "material_en": "材質・技法（英語）",
        "dimensions": "寸法",
        "description": "解説",
        "description_en": "解説（英語）",
        "keywords": "キーワード",
        "rights": "権利",
        "public": "公開",
        "behavior": "表示形式",
        "images": "画像ファイル",
    },
    {
        "id": "登録番号",
        "title": "作品名",
        "title_kana": "作品名カナ",
        "title_en": "作品名（英）",
        "creator": "作家名",
        "creator_en": "作家名（英）",
        "date": "制作年",
        "object_type": "分野",
        "object_type_en": "分野（英）",
        "material": "技法",
        "material_en": "技法（英）",
        "dimensions": "サイズ",
        "description": "作品解説",
        "description_en": "作品解説（英）",
        "keywords": "検索語",
        "rights": "著作権",
        "public": "WEB公開",
        "behavior": "閲覧形式",
        "images": "画像ファイル名",
    },
    {
        "id": "文書番号",
        "title": "件名",
        "title_kana": "件名よみ",
        "title_en": "件名（英訳）",
        "creator": "作成者",
        "creator_en": "作成者（英訳）",
        "date": "年代",
        "object_type": "資料種別",
        "object_type_en": "資料種別（英訳）",
        "material": "形態",
        "material_en": "形態（英訳）",
        "dimensions": "員数・法量",
        "description": "概要",
        "description_en": "概要（英訳）",
        "keywords": "索引語",
        "rights": "利用条件",
        "public": "公開区分",
        "behavior": "表示",
        "images": "画像",
    },
    {
        "id": "catalogNo",
        "title": "title",
        "title_kana": "titleYomi",
        "title_en": "titleEn",
        "creator": "maker",
        "creator_en": "makerEn",
        "date": "date",
        "object_type": "type",
        "object_type_en": "typeEn",
        "material": "medium",
        "material_en": "mediumEn",
        "dimensions": "size",
        "description": "note",
        "description_en": "noteEn",
        "keywords": "tags",
        "rights": "license",
        "public": "visibility",
        "behavior": "layout",
        "images": "files",
    },
]
EXTRA_COLUMNS = [
    ("受入年", lambda rng: str(rng.randint(1950, 2024))),
    ("所在", lambda rng: rng.choice(["収蔵庫A", "収蔵庫B", "展示室1", "寄託先"])),
    ("備考", lambda rng: rng.choice(["", "", "修理済", "要調査", "複製あり"])),
]
# (suffix, encoding written, encoding declared in institution.toml)
FORMATS = [
    (".csv", "utf-8", "auto"),
    (".csv", "cp932", "auto"),
    (".tsv", "utf-8-sig", "auto"),
    (".jsonl", "utf-8", "auto"),
    (".json", "utf-8", "auto"),
]


# -- composing one record ---------------------------------------------------------------------


def _kanji_number(n: int) -> str:
    """1..99 in kanji numerals as dates write them: 三, 十, 十二, 二十三."""
    tens, ones = divmod(n, 10)
    text = "" if tens == 0 else ("十" if tens == 1 else KANJI_DIGITS[tens] + "十")
    return text + (KANJI_DIGITS[ones] if ones else "")


def make_date(rng: random.Random, earliest: int = 1600) -> tuple[str, str]:
    """A date as a Japanese museum writes it, in one of the common shapes, and in English.

    Nothing before ``earliest``; below 1600 (archaeology) only periods and centuries.
    """
    shape = rng.random()
    if earliest < 1600:
        if shape < 0.7:
            return rng.choice([p for p in PERIODS if PERIOD_START[p[0]] < 800])
        century = rng.randint(1, 8)
        return f"{century}世紀", f"the {_ordinal(century)} century"
    if shape < 0.35:
        era, era_en, start, length = rng.choice([e for e in ERAS if e[2] >= earliest])
        year = rng.randint(1, length)
        en = f"{start + year - 1} ({era_en} {year})"
        if year == 1 and rng.random() < 0.5:
            return f"{era}元年", en
        if start < 1868 and rng.random() < 0.6:
            return f"{era}{_kanji_number(year)}年", en
        return f"{era}{year}年", en
    if shape < 0.6:
        return rng.choice([p for p in PERIODS if PERIOD_START[p[0]] >= earliest])
    if shape < 0.75:
        century = rng.randint(max(17, earliest // 100 + 1), 20)
        part, part_en = rng.choice(
            [("", ""), ("", ""), ("前半", "first half of the "), ("後半", "second half of the ")]
        )
        return f"{century}世紀{part}", f"the {part_en}{_ordinal(century)} century"
    if shape < 0.9:
        year = rng.randint(max(1850, earliest), 2020)
        return str(year), str(year)
    decade = rng.randint(max(185, earliest // 10), 201)
    return f"{decade}0年代", f"the {decade}0s"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _person(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.3:
        return "不詳", "Unknown"
    fam, given = rng.choice(FAMILY), rng.choice(GIVEN)
    prefix = "伝 " if rng.random() < 0.1 else ""
    en_prefix = "attributed to " if prefix else ""
    return f"{prefix}{fam[0]} {given[0]}", f"{en_prefix}{fam[2]} {given[2]}"


@dataclass
class InstitutionPlan:
    index: int
    id: str
    name_ja: str
    name_en: str
    kind: Kind
    records: int
    suffix: str
    encoding: str
    declared_encoding: str
    columns: dict[str, str]
    rights: str
    max_image_size: int
    seed: int


def compose(rng: random.Random, kind: Kind, local_id: str) -> dict[str, str]:
    """Canonical fields of one record (images excluded)."""
    obj = rng.choice(kind.objects)
    tech = rng.choice(kind.techniques)
    motif = rng.choice(MOTIFS)
    material = rng.choice(kind.materials)
    creator, creator_en = _person(rng) if kind.earliest >= 1600 else ("不詳", "Unknown")
    date, date_en = make_date(rng, kind.earliest)
    state, state_en = rng.choice(STATES)
    title = f"{tech[0]}{motif[0]}文{obj[0]}"
    title_en = f"{obj[2][0].upper()}{obj[2][1:]} with {motif[2]} ({tech[2]})"
    kana = f"{tech[1]}{motif[1]}もん{obj[1]}"
    if rng.random() < 0.05:  # a numbered series: Ⅱ and Ⅲ are CP932-only characters
        number, roman = rng.choice([("Ⅱ", "II"), ("Ⅲ", "III")])
        title += f" {number}"
        title_en += f" {roman}"
    h, w = rng.randint(5, 180), rng.randint(5, 120)
    dims = rng.choice(
        [
            f"縦{h}.{rng.randint(0, 9)}cm 横{w}.{rng.randint(0, 9)}cm",
            f"径{w}.{rng.randint(0, 9)}㎝ 高{h // 3 + 1}.{rng.randint(0, 9)}㎝",
            f"高{h}cm",
        ]
    )
    desc = f"{motif[0]}を{tech[0]}で表した{obj[0]}。{date}の作と考えられ、{state}。"
    desc_en = f"A {obj[2]} decorated with {motif[2]} in {tech[2]}, from {date_en}; {state_en}."
    keywords = rng.sample(kind.keywords, 2) + [motif[0], obj[0]]
    fields = {
        "id": local_id,
        "title": title,
        "title_kana": kana,
        "title_en": title_en,
        "creator": creator,
        "creator_en": creator_en,
        "date": date,
        "object_type": obj[0],
        "object_type_en": obj[2],
        "material": f"{material[0]}、{tech[0]}",
        "material_en": f"{material[2]}, {tech[2]}",
        "dimensions": dims,
        "description": desc,
        "description_en": desc_en,
        "keywords": "、".join(keywords) if rng.random() < 0.5 else ";".join(keywords),
        "rights": rng.choice(RIGHTS) if rng.random() < 0.2 else "",
        "public": "非公開" if rng.random() < 0.02 else "公開",
        # Books and albums are turned page by page; handscrolls unroll as one strip.
        "behavior": "paged" if obj[0] in PAGED else "continuous" if obj[0] in CONTINUOUS else "",
    }
    return fields


# -- images -------------------------------------------------------------------------------------


def render_image(seed: int, size: tuple[int, int], detail: str = "flat") -> bytes:
    """A JPEG, distinct for each seed: a tinted ground, a shape, a few strokes.

    ``detail="photo"`` adds sensor-like noise over the whole frame, so a large image
    has the entropy of a camera file (flat drawings decode and compress unrealistically
    fast, which would flatter a tiling benchmark).
    """
    rng = random.Random(seed)
    w, h = size
    ground = tuple(rng.randint(60, 230) for _ in range(3))
    img = Image.new("RGB", size, ground)
    d = ImageDraw.Draw(img)
    colour = tuple(255 - c for c in ground)
    x0, y0 = rng.randint(0, w // 3), rng.randint(0, h // 3)
    x1, y1 = rng.randint(2 * w // 3, w), rng.randint(2 * h // 3, h)
    (d.ellipse if rng.random() < 0.5 else d.rectangle)((x0, y0, x1, y1), fill=colour)
    for _ in range(3):
        d.line(
            [(rng.randint(0, w), rng.randint(0, h)) for _ in range(2)],
            fill=(30, 30, 30),
            width=max(1, min(w, h) // 32),
        )
    if detail == "photo":
        return _add_noise(img, seed)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def _add_noise(img: Image.Image, seed: int) -> bytes:
    """Gaussian noise (seeded, so deterministic) over a drawing, saved as a camera-like JPEG."""
    import pyvips

    w, h = img.size
    base = pyvips.Image.new_from_memory(img.tobytes(), w, h, 3, "uchar")
    noise = pyvips.Image.gaussnoise(w, h, sigma=18, mean=0, seed=seed % 2**31)
    grain = noise.gaussblur(0.6) if min(w, h) > 8 else noise
    out = (base + grain.bandjoin([grain, grain])).cast("uchar")
    return out.jpegsave_buffer(Q=92, strip=True)


def render_logo(seed: int) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", (120, 120), (255, 255, 255))
    colour = tuple(rng.randint(20, 160) for _ in range(3))
    ImageDraw.Draw(img).ellipse((10, 10, 110, 110), outline=colour, width=8)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


# -- planning and writing -----------------------------------------------------------------------


def split_records(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split over ``parts`` unevenly (a few large institutions, many small), each >= 1."""
    if parts > total:
        raise ValueError(f"{parts} institutions need at least {parts} records (got {total})")
    weights = [1 / (i + 1) ** 0.8 for i in range(parts)]
    rng.shuffle(weights)
    scale = (total - parts) / sum(weights)
    counts = [1 + int(w * scale) for w in weights]
    for i in range(total - sum(counts)):  # hand out the rounding remainder
        counts[i % parts] += 1
    return counts


def plan(institutions: int, records: int, seed: int) -> list[InstitutionPlan]:
    rng = random.Random(seed)
    counts = split_records(records, institutions, rng)
    plans = []
    for i, count in enumerate(counts):
        district = DISTRICTS[i % len(DISTRICTS)]
        kind = KINDS[(i * 3 + seed) % len(KINDS)]
        suffix, encoding, declared = FORMATS[i % len(FORMATS)]
        round_ = i // len(DISTRICTS)
        slug = f"{district[1]}-{kind.slug}" + (f"-{round_ + 1}" if round_ else "")
        plans.append(
            InstitutionPlan(
                index=i,
                id=slug,
                name_ja=f"市立{district[0]}{kind.name_ja}",
                name_en=f"{district[2]} {kind.name_en}",
                kind=kind,
                records=count,
                suffix=suffix,
                encoding=encoding,
                declared_encoding=declared,
                columns=COLUMN_SETS[3] if suffix in (".json", ".jsonl") else COLUMN_SETS[i % 3],
                rights=RIGHTS[i % len(RIGHTS)],
                max_image_size=1024 if i % 7 == 3 else 0,
                seed=rng.randrange(2**32),
            )
        )
    return plans


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def institution_toml(p: InstitutionPlan, records_name: str) -> str:
    lines = [
        "# Synthetic institution written by `archive generate` (collections_data/synth.py).",
        f"id = {_toml_string(p.id)}",
        f"name = {{ ja = {_toml_string(p.name_ja)}, en = {_toml_string(p.name_en)} }}",
        f'homepage = "https://{p.id}.example.jp/"',
        'logo = "logo.png"',
        f"rights = {_toml_string(p.rights)}",
        f"max_image_size = {p.max_image_size}",
        "",
        "[records]",
        f"path = {_toml_string(records_name)}",
        f"encoding = {_toml_string(p.declared_encoding)}",
        "",
        "[fields]",
        *(f"{name} = {_toml_string(column)}" for name, column in p.columns.items()),
        "",
    ]
    return "\n".join(lines)


@dataclass
class Summary:
    institutions: list[dict] = field(default_factory=list)
    records: int = 0
    images: int = 0
    image_bytes: int = 0


def write_institution(
    out: Path,
    p: InstitutionPlan,
    image_size: tuple[int, int],
    image_pool: int = 0,
    image_detail: str = "flat",
) -> dict:
    """Write one institution folder; returns its counts."""
    folder = out / p.id
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("written by archive generate; safe to delete\n", encoding="utf-8")
    (folder / "logo.png").write_bytes(render_logo(p.seed))
    rng = random.Random(p.seed)
    prefix = "".join(w[0] for w in p.id.split("-")).upper()
    pool: list[Path] = []
    rows: list[dict[str, object]] = []
    images = image_bytes = 0
    for n in range(1, p.records + 1):
        local_id = f"{prefix}-{n:06d}"
        fields = compose(rng, p.kind, local_id)
        if fields["behavior"]:
            count = rng.randint(3, 6)
        else:
            count = 1 if rng.random() < 0.9 else rng.randint(2, 3)
        paths = []
        for k in range(count):
            rel = f"images/{(images // IMAGES_PER_DIR):04d}/{local_id}_{k + 1}.jpg"
            dest = folder / rel
            if images % IMAGES_PER_DIR == 0 or not dest.parent.is_dir():
                dest.parent.mkdir(parents=True, exist_ok=True)
            if image_pool and len(pool) >= image_pool:
                source = pool[images % image_pool]
                try:
                    os.link(source, dest)
                except OSError:
                    shutil.copyfile(source, dest)
            else:
                data = render_image(
                    p.seed ^ (images * 2654435761 % 2**32), image_size, image_detail
                )
                dest.write_bytes(data)
                image_bytes += len(data)
                if image_pool:
                    pool.append(dest)
            paths.append(rel)
            images += 1
        row: dict[str, object] = {p.columns[k]: v for k, v in fields.items() if k in p.columns}
        row[p.columns["images"]] = paths if p.suffix in (".json", ".jsonl") else ";".join(paths)
        for column, value in EXTRA_COLUMNS:
            row[column] = value(rng)
        rows.append(row)
    records_name = f"records{p.suffix}"
    (folder / records_name).write_bytes(_encode_records(rows, p))
    (folder / "institution.toml").write_text(institution_toml(p, records_name), encoding="utf-8")
    return {
        "id": p.id,
        "kind": p.kind.slug,
        "format": f"{p.suffix[1:]} ({p.encoding})",
        "records": p.records,
        "images": images,
        "image_bytes": image_bytes,
    }


def _encode_records(rows: list[dict[str, object]], p: InstitutionPlan) -> bytes:
    if p.suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    elif p.suffix == ".json":
        text = json.dumps({"records": rows}, ensure_ascii=False, indent=1) + "\n"
    else:
        buf = io.StringIO(newline="")
        header = list(rows[0]) if rows else list(p.columns.values())
        writer = csv.DictWriter(
            buf,
            fieldnames=header,
            delimiter="\t" if p.suffix == ".tsv" else ",",
            lineterminator="\r\n" if p.encoding == "cp932" else "\n",
        )
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    return text.encode(p.encoding)


def generate(
    out: Path,
    *,
    institutions: int,
    records: int,
    image_size: tuple[int, int] = (64, 64),
    seed: int = 1,
    image_pool: int = 0,
    image_detail: str = "flat",
    overwrite: bool = False,
    jobs: int = 1,
    progress: Callable[[dict], None] | None = None,
) -> Summary:
    """Write ``institutions`` folders with ``records`` records in total under ``out``.

    ``image_pool`` > 0 draws only that many distinct images per institution and
    hard-links the rest (fast, little disk; ingest still tiles each path).
    ``image_detail`` is "flat" (drawings) or "photo" (with camera-like noise). An
    existing ``out`` must be empty, or hold only folders this generator wrote and
    ``overwrite`` be set. ``jobs`` > 1 writes institutions in that many forked
    processes; each institution has its own seed, so the bytes do not change.
    """
    if institutions < 1 or records < 1:
        raise ValueError("need at least one institution and one record")
    if min(image_size) < 1 or image_size[0] * image_size[1] > 50_000_000:
        raise ValueError(f"image size {image_size[0]}x{image_size[1]} is out of range")
    if image_detail not in ("flat", "photo"):
        raise ValueError(f"image detail must be flat or photo (got {image_detail!r})")
    out = Path(out)
    if out.exists():
        children = [c for c in out.iterdir()]
        foreign = [c.name for c in children if not (c / MARKER).is_file()]
        if foreign:
            raise FileExistsError(
                f"{out} holds {', '.join(sorted(foreign)[:5])}, "
                "not written by this generator; choose an empty folder"
            )
        if children and not overwrite:
            raise FileExistsError(f"{out} is not empty; pass overwrite to replace it")
        for child in children:
            shutil.rmtree(child)
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    plans = plan(institutions, records, seed)
    task = partial(
        write_institution,
        out,
        image_size=image_size,
        image_pool=image_pool,
        image_detail=image_detail,
    )

    def collect(results) -> None:
        for info in results:
            summary.institutions.append(info)
            summary.records += info["records"]
            summary.images += info["images"]
            summary.image_bytes += info["image_bytes"]
            if progress:
                progress(info)

    if jobs > 1 and len(plans) > 1:
        # fork: this module may have been loaded from a file path, which spawn cannot re-import.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(jobs, len(plans)), mp_context=context) as pool:
            collect(pool.map(task, plans))
    else:
        collect(map(task, plans))
    return summary


def parse_size(text: str) -> tuple[int, int]:
    """'64x48' -> (64, 48); '64' -> (64, 64)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        if len(parts) == 1:
            return int(parts[0]), int(parts[0])
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise ValueError(f"image size must look like 64x48 (got {text!r})")


__all__: Sequence[str] = ["generate", "parse_size", "plan", "make_date", "Summary"]
