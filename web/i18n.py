"""Japanese and English UI texts, as data, and how a request's language is chosen.

The language comes from ``?lang=`` (which also sets a cookie, so the choice sticks),
then the ``lang`` cookie, then the browser's Accept-Language; Japanese otherwise,
because most visitors are Japanese. Record fields follow the same language with
fallback to the other (``Record.text``).
"""

from __future__ import annotations

import re

from flask import Request

LANGS = ("ja", "en")
DEFAULT_LANG = "ja"
COOKIE = "lang"

# key -> {"ja": ..., "en": ...}. Placeholders use str.format names.
TEXTS: dict[str, dict[str, str]] = {
    # Frame
    "skip": {"ja": "本文へ移動", "en": "Skip to content"},
    "nav.home": {"ja": "ホーム", "en": "Home"},
    "nav.search": {"ja": "検索", "en": "Search"},
    "nav.compare": {"ja": "比較", "en": "Compare"},
    "nav.about": {"ja": "このサイトについて", "en": "About"},
    "nav.help": {"ja": "使い方", "en": "Help"},
    "nav.main": {"ja": "メインメニュー", "en": "Main menu"},
    "lang.switch": {"ja": "English", "en": "日本語"},
    "lang.switch_label": {"ja": "Switch to English", "en": "日本語に切り替え"},
    "footer.iiif": {"ja": "IIIF コレクション", "en": "IIIF collection"},
    "footer.changes": {
        "ja": "更新情報（IIIF Change Discovery）",
        "en": "Changes (IIIF Change Discovery)",
    },
    "footer.api": {"ja": "API（OpenAPI）", "en": "API (OpenAPI)"},
    "footer.sitemap": {"ja": "サイトマップ", "en": "Sitemap"},
    "footer.note": {
        "ja": "各資料の画像とデータの権利は、資料ごとに表示された条件に従います。",
        "en": "Images and data of each object are available under the terms shown with it.",
    },
    # Search box
    "search.placeholder": {
        "ja": "作品名・作者・キーワードで検索",
        "en": "Search titles, creators, keywords",
    },
    "search.label": {"ja": "所蔵資料を検索", "en": "Search the collections"},
    "search.button": {"ja": "検索", "en": "Search"},
    # Home
    "home.title": {
        "ja": "まちの文化財を、高精細画像で",
        "en": "The city's heritage, in high resolution",
    },
    "home.lead": {
        "ja": "市内{n}館の所蔵資料 {count} 件を、検索し、拡大し、比べることができます。",
        "en": "Search, zoom into and compare {count} objects from {n} institutions of the city.",
    },
    "home.institutions": {"ja": "参加館", "en": "Institutions"},
    "home.by_type": {"ja": "種類から探す", "en": "Browse by type"},
    "home.by_era": {"ja": "時代から探す", "en": "Browse by period"},
    "home.featured": {"ja": "注目の資料", "en": "Featured objects"},
    "home.objects": {"ja": "{count} 件", "en": "{count} objects"},
    "home.all": {"ja": "すべての資料を見る", "en": "See all objects"},
    # Search results
    "results.title": {"ja": "検索結果", "en": "Search results"},
    "results.title_q": {"ja": "「{q}」の検索結果", "en": "Results for “{q}”"},
    "results.count": {
        "ja": "{total} 件中 {first}–{last} 件を表示",
        "en": "{first}–{last} of {total}",
    },
    "results.none": {"ja": "該当する資料はありません。", "en": "No objects match."},
    "results.none_hint": {
        "ja": "キーワードを減らすか、絞り込みを解除してください。",
        "en": "Try fewer words or remove some filters.",
    },
    "results.filters": {"ja": "絞り込み", "en": "Filters"},
    "results.active": {"ja": "適用中の条件", "en": "Active filters"},
    "results.remove": {"ja": "{label} を解除", "en": "Remove {label}"},
    "results.clear": {"ja": "すべて解除", "en": "Clear all"},
    "results.sort": {"ja": "並び順", "en": "Sort"},
    "results.size": {"ja": "表示件数", "en": "Per page"},
    "results.view": {"ja": "表示形式", "en": "View"},
    "results.grid": {"ja": "グリッド", "en": "Grid"},
    "results.list": {"ja": "リスト", "en": "List"},
    "results.apply": {"ja": "適用", "en": "Apply"},
    "results.more": {"ja": "さらに表示", "en": "Show more"},
    "results.years": {"ja": "年代（西暦）", "en": "Years (CE)"},
    "results.year_from": {"ja": "から", "en": "From"},
    "results.year_to": {"ja": "まで", "en": "To"},
    "sort.relevance": {"ja": "関連度順", "en": "Relevance"},
    "sort.date_asc": {"ja": "年代の古い順", "en": "Oldest first"},
    "sort.date_desc": {"ja": "年代の新しい順", "en": "Newest first"},
    "sort.added": {"ja": "新着順", "en": "Recently added"},
    "page.label": {"ja": "ページ", "en": "Pages"},
    "page.prev": {"ja": "前へ", "en": "Previous"},
    "page.next": {"ja": "次へ", "en": "Next"},
    "page.first": {"ja": "最初", "en": "First"},
    "page.last": {"ja": "最後", "en": "Last"},
    "page.n": {"ja": "{n} ページ", "en": "Page {n}"},
    # Facets
    "facet.institution": {"ja": "所蔵館", "en": "Institution"},
    "facet.object_type": {"ja": "種類", "en": "Object type"},
    "facet.material": {"ja": "材質・技法", "en": "Material"},
    "facet.era": {"ja": "時代", "en": "Period"},
    "facet.century": {"ja": "世紀", "en": "Century"},
    "facet.creator": {"ja": "作者", "en": "Creator"},
    "facet.rights": {"ja": "利用条件", "en": "Rights"},
    "facet.has_images": {"ja": "画像", "en": "Images"},
    "facet.has_images.true": {"ja": "画像あり", "en": "With images"},
    "facet.has_images.false": {"ja": "画像なし", "en": "Without images"},
    "facet.year": {"ja": "年代", "en": "Years"},
    # Object page
    "object.viewer": {"ja": "画像ビューア", "en": "Image viewer"},
    "object.viewer_help": {
        "ja": "矢印キーで移動、＋／−で拡大縮小、R で回転、0 で全体表示。",
        "en": "Arrow keys pan, + and − zoom, R rotates, 0 shows the whole image.",
    },
    "object.images": {"ja": "画像一覧", "en": "Images"},
    "object.image_n": {"ja": "画像 {n}／{total}", "en": "Image {n} of {total}"},
    "object.zoom_in": {"ja": "拡大", "en": "Zoom in"},
    "object.zoom_out": {"ja": "縮小", "en": "Zoom out"},
    "object.home": {"ja": "全体表示", "en": "Whole image"},
    "object.rotate": {"ja": "回転", "en": "Rotate"},
    "object.fullscreen": {"ja": "全画面", "en": "Full screen"},
    "object.prev_image": {"ja": "前の画像", "en": "Previous image"},
    "object.next_image": {"ja": "次の画像", "en": "Next image"},
    "object.no_images": {
        "ja": "この資料の画像は公開されていません。",
        "en": "No images of this object are published.",
    },
    "object.metadata": {"ja": "資料情報", "en": "Details"},
    "object.original": {"ja": "原文", "en": "Original"},
    "object.period": {"ja": "年代（西暦）", "en": "Years (CE)"},
    "object.era": {"ja": "時代", "en": "Period"},
    "object.rights": {"ja": "利用条件", "en": "Rights"},
    "object.credit": {"ja": "所蔵・提供", "en": "Credit"},
    "object.institution_site": {"ja": "所蔵館のウェブサイト", "en": "Institution website"},
    "object.prev": {"ja": "前の資料", "en": "Previous object"},
    "object.next": {"ja": "次の資料", "en": "Next object"},
    "object.back": {"ja": "検索結果に戻る", "en": "Back to results"},
    "object.related": {"ja": "関連資料", "en": "Related objects"},
    "object.same_creator": {"ja": "同じ作者", "en": "Same creator"},
    "object.similar": {"ja": "似ている資料", "en": "Similar objects"},
    "object.same_type": {"ja": "同じ種類", "en": "Same type"},
    "object.same_institution": {"ja": "同じ所蔵館", "en": "Same institution"},
    "object.iiif": {"ja": "IIIF マニフェスト", "en": "IIIF manifest"},
    "object.iiif_hint": {
        "ja": "IIIF ロゴを IIIF 対応ビューアにドラッグ＆ドロップすると開けます。",
        "en": "Drag the IIIF logo into any IIIF viewer to open this object there.",
    },
    "object.mirador": {"ja": "Mirador で開く", "en": "Open in Mirador"},
    "object.compare_add": {"ja": "比較に追加", "en": "Add to compare"},
    "object.json": {"ja": "データ（JSON）", "en": "Data (JSON)"},
    "object.download": {"ja": "ダウンロード", "en": "Download"},
    "object.download_size": {"ja": "{label}（{w}×{h} px）", "en": "{label} ({w}×{h} px)"},
    "object.download_small": {"ja": "小", "en": "Small"},
    "object.download_medium": {"ja": "中", "en": "Medium"},
    "object.download_large": {"ja": "最大", "en": "Largest"},
    "object.download_restricted": {
        "ja": "利用条件により、大きな画像のダウンロードはできません。",
        "en": "The rights of this object allow only small downloads.",
    },
    "object.cite": {"ja": "引用する", "en": "Cite this"},
    "object.cite_accessed": {"ja": "{date} 閲覧", "en": "accessed {date}"},
    "object.share": {"ja": "この表示を共有", "en": "Share this view"},
    "object.share_hint": {
        "ja": "いま表示している画像と拡大範囲を開くリンク（IIIF Content State）です。",
        "en": "A link that reopens this image at the current zoom and region (IIIF Content State).",
    },
    "object.share_copy": {"ja": "リンクをコピー", "en": "Copy link"},
    "object.share_copied": {"ja": "コピーしました", "en": "Copied"},
    "object.keywords": {"ja": "キーワード", "en": "Keywords"},
    "object.extra": {"ja": "その他の情報", "en": "More information"},
    # Institution
    "inst.objects": {"ja": "所蔵資料", "en": "Objects"},
    "inst.count": {"ja": "公開資料 {count} 件", "en": "{count} public objects"},
    "inst.search": {"ja": "この館の資料をすべて見る", "en": "See all objects of this institution"},
    "inst.homepage": {"ja": "公式サイト", "en": "Website"},
    "inst.types": {"ja": "主な種類", "en": "Main object types"},
    # Compare
    "compare.title": {"ja": "資料を比較", "en": "Compare objects"},
    "compare.lead": {
        "ja": "資料ページの「比較に追加」で選んだ資料を、Mirador で並べて見られます。",
        "en": "Objects you add with “Add to compare” open side by side in Mirador.",
    },
    "compare.empty": {
        "ja": "まだ資料が選ばれていません。資料ページで「比較に追加」を押してください。",
        "en": "No objects chosen yet. Use “Add to compare” on an object page.",
    },
    "compare.remove": {"ja": "{title} を外す", "en": "Remove {title}"},
    "compare.chosen": {"ja": "選んだ資料", "en": "Chosen objects"},
    "compare.workspace": {"ja": "Mirador ワークスペース", "en": "Mirador workspace"},
    # Errors
    "error.404": {"ja": "ページが見つかりません", "en": "Page not found"},
    "error.404_text": {
        "ja": "お探しのページは移動したか、公開されていない可能性があります。",
        "en": "The page may have moved, or the object may not be public.",
    },
    "error.404_try": {"ja": "次をお試しください", "en": "You could try"},
    "error.404_search": {"ja": "「{q}」で検索する", "en": "Search for “{q}”"},
    "error.400": {"ja": "リクエストに誤りがあります", "en": "Bad request"},
    "error.503": {"ja": "検索を一時的に利用できません", "en": "Search is temporarily unavailable"},
    "error.503_text": {
        "ja": "検索サービスに接続できません。しばらくしてからもう一度お試しください。"
        "資料ページは閲覧できます。",
        "en": "The search service cannot be reached. Please try again shortly; "
        "object pages still work.",
    },
    "error.500": {"ja": "エラーが発生しました", "en": "Something went wrong"},
    "error.500_text": {
        "ja": "ご不便をおかけしています。時間をおいて再度お試しください。",
        "en": "Sorry. Please try again in a moment.",
    },
    "error.generic": {"ja": "エラー", "en": "Error"},
    # About / help
    "about.title": {"ja": "このサイトについて", "en": "About this site"},
    "about.p1": {
        "ja": "まちのデジタルミュージアムは、市内の美術館・博物館・文学館・資料館が所蔵する"
        "文化財を、高精細画像とともに公開するサイトです。",
        "en": "The City Digital Museum publishes the collections of the city's museums, "
        "literary halls and archives, with high-resolution images.",
    },
    "about.p2": {
        "ja": "画像は国際的な規格 IIIF（トリプルアイエフ）で配信しています。"
        "IIIF に対応したビューアやツールで、ほかの機関の資料と並べて見ることができます。",
        "en": "Images and descriptions are published with IIIF, the international standard, "
        "so you can open them in any IIIF viewer next to objects from other museums.",
    },
    "about.p3": {
        "ja": "資料ごとの利用条件は、資料ページの「利用条件」に表示しています。",
        "en": "The terms of reuse of each object are shown on its page under “Rights”.",
    },
    "about.stats": {"ja": "参加館と公開資料数", "en": "Institutions and public objects"},
    "about.data": {"ja": "データの利用", "en": "Using the data"},
    "about.data_text": {
        "ja": "検索 API、資料データ（JSON）、一括ダウンロード（JSON Lines・CSV）、"
        "IIIF マニフェストとコレクション、更新情報（IIIF Change Discovery）を提供しています。",
        "en": "We offer a search API, record data as JSON, bulk exports (JSON Lines and CSV), "
        "IIIF manifests and collections, and a change feed (IIIF Change Discovery).",
    },
    "about.credits": {
        "ja": "英語での検索には、電子辞書研究開発グループ（EDRDG）の JMdict を"
        "CC BY-SA 4.0 のもとで利用しています。"
        "日本語の読みは Sudachi（ワークスアプリケーションズ）、"
        "意味による検索は multilingual-e5-small によります。",
        "en": "English searches use JMdict, by the Electronic Dictionary Research and "
        "Development Group (EDRDG), under CC BY-SA 4.0. Japanese readings come from "
        "Sudachi (Works Applications), search by meaning from multilingual-e5-small.",
    },
    "help.title": {"ja": "使い方", "en": "Help"},
    "help.search": {"ja": "検索のしかた", "en": "Searching"},
    "help.search_words": {
        "ja": "複数の語を空白で区切ると、すべてを含む資料を探します。",
        "en": "Several words separated by spaces find objects that contain all of them.",
    },
    "help.search_phrase": {
        "ja": '"金地 屏風" のように引用符で囲むと、その語順のまま探します。',
        "en": 'Put words in quotes, like "gold screen", to find them as a phrase.',
    },
    "help.search_not": {
        "ja": "語の前に - を付けると、その語を含む資料を除きます（例：屏風 -六曲）。",
        "en": "Put - before a word to leave out objects that contain it (e.g. screen -six).",
    },
    "help.search_kana": {
        "ja": "ひらがな・カタカナ、旧字体・新字体、全角・半角の違いは気にせず検索できます。",
        "en": "Japanese searches match across kana, old and new character forms, "
        "and full- and half-width characters.",
    },
    "help.filters": {"ja": "絞り込み", "en": "Filters"},
    "help.filters_text": {
        "ja": "検索結果の左（スマートフォンでは上）の「絞り込み」から、所蔵館・種類・時代などで"
        "絞り込めます。条件は URL に残るので、そのまま共有できます。",
        "en": "Narrow results by institution, type, period and more under “Filters”. "
        "The address keeps every choice, so you can share or bookmark it.",
    },
    "help.viewer": {"ja": "画像ビューアの操作", "en": "Using the image viewer"},
    "help.viewer_mouse": {
        "ja": "ドラッグで移動、ホイールやピンチで拡大縮小、ダブルクリックで拡大します。",
        "en": "Drag to pan; scroll, pinch or double-click to zoom.",
    },
    "help.viewer_keys": {
        "ja": "キーボード：矢印キーで移動、＋／−で拡大縮小、0 で全体表示、R で回転、F で反転。",
        "en": "Keyboard: arrow keys pan, + and − zoom, 0 shows the whole image, R rotates, "
        "F flips.",
    },
    "help.share": {
        "ja": "「この表示を共有」のリンクを開くと、同じ画像の同じ部分が表示されます。",
        "en": "The “Share this view” link opens the same image at the same region.",
    },
    "help.iiif": {"ja": "IIIF で使う", "en": "Using IIIF"},
    "help.iiif_text": {
        "ja": "資料ページの IIIF ロゴを、Mirador などの IIIF 対応ビューアにドラッグ＆ドロップ"
        "すると、その資料を開けます。「比較」では、選んだ資料を Mirador で並べられます。",
        "en": "Drag the IIIF logo on an object page into a IIIF viewer such as Mirador to open "
        "the object there. “Compare” shows the objects you chose side by side in Mirador.",
    },
    "help.lang": {
        "ja": "画面上部の「English」で英語表示に切り替えられます。"
        "英語の情報がない項目は日本語で表示します。",
        "en": "Use “日本語” at the top to switch to Japanese. Fields without an English text "
        "are shown in Japanese.",
    },
    # Rights
    "rights.open": {"ja": "自由に利用できます", "en": "Free to use"},
    "rights.conditions": {"ja": "条件付きで利用できます", "en": "Use with conditions"},
    "rights.restricted": {"ja": "著作権保護あり", "en": "In copyright"},
}

# Common Japanese periods and their usual English names.
ERAS_EN: dict[str, str] = {
    "旧石器時代": "Paleolithic period",
    "縄文時代": "Jōmon period",
    "弥生時代": "Yayoi period",
    "古墳時代": "Kofun period",
    "飛鳥時代": "Asuka period",
    "奈良時代": "Nara period",
    "平安時代": "Heian period",
    "鎌倉時代": "Kamakura period",
    "南北朝時代": "Nanboku-chō period",
    "室町時代": "Muromachi period",
    "戦国時代": "Sengoku period",
    "安土桃山時代": "Azuchi-Momoyama period",
    "桃山時代": "Momoyama period",
    "江戸時代": "Edo period",
    "明治時代": "Meiji era",
    "大正時代": "Taishō era",
    "昭和時代": "Shōwa era",
    "平成時代": "Heisei era",
    "令和時代": "Reiwa era",
}
_CENTURY_RE = re.compile(r"^(\d{1,2})世紀$")


def era_label(value: str, lang: str) -> str:
    """A normalised period ("江戸時代", "19世紀") in the UI language."""
    if lang != "en":
        return value
    if value in ERAS_EN:
        return ERAS_EN[value]
    match = _CENTURY_RE.match(value)
    if match:
        n = int(match.group(1))
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"{n}{suffix} century"
    return value


def translate(key: str, lang: str, **values: object) -> str:
    """The UI text ``key`` in ``lang``; a missing key shows itself (and a test finds it)."""
    entry = TEXTS.get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry[DEFAULT_LANG]
    return text.format(**values) if values else text


def _accept_language(header: str) -> str | None:
    """Best of LANGS in an Accept-Language header (RFC 9110 §12.5.4), or None."""
    best: tuple[float, str] | None = None
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q, primary)
    return best[1] if best else None


def choose_lang(request: Request) -> tuple[str, bool]:
    """(language, chosen explicitly by ?lang=): query, then cookie, then Accept-Language."""
    asked = request.args.get("lang", "")
    if asked in LANGS:
        return asked, True
    cookie = request.cookies.get(COOKIE, "")
    if cookie in LANGS:
        return cookie, False
    return _accept_language(request.headers.get("Accept-Language", "")) or DEFAULT_LANG, False
