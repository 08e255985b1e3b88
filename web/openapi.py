"""The OpenAPI 3 description of the research API, served at /api/openapi.json.

Kept beside ``web/api.py`` and checked against it by schemathesis in the test
suite: every limit here (page sizes, year range, enumerations) is the one the
API enforces, so a client that follows this document never gets a 400.
"""

from __future__ import annotations

from typing import Any

from search.base import FACETS, MAX_PAGE_SIZE, MAX_SIMILAR, SORTS

# Limits shared with web/api.py (imported there, so they cannot drift apart).
LANGS = ("ja", "en")
MAX_PAGE = 1000
MAX_Q = 500
MAX_VALUE = 200
MAX_VALUES = 20
YEAR_MIN, YEAR_MAX = -40000, 3000
SUGGEST_MAX_Q = 100
SUGGEST_MAX_LIMIT = 50

_ERROR = {"$ref": "#/components/responses/Error"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _string_param(name: str, description: str, *, repeat: bool = False) -> dict[str, Any]:
    item = {"type": "string", "minLength": 1, "maxLength": MAX_VALUE}
    schema = {"type": "array", "items": item, "maxItems": MAX_VALUES} if repeat else item
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        "style": "form",
        "explode": True,
    }


def _int_param(
    name: str, description: str, low: int, high: int, default: int | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    if default is not None:
        schema["default"] = default
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _enum_param(
    name: str, description: str, values: tuple[str, ...], default: str | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    if default is not None:
        schema["default"] = default
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_LANG = _enum_param("lang", "Language of titles, labels and highlights.", LANGS, "ja")

_FACET_DESCRIPTIONS = {
    "institution": "Institution id (repeat for OR), e.g. `noh-museum`.",
    "object_type": "Object type as written in Japanese, e.g. `能面`.",
    "material": "Material and technique as written, e.g. `木造彩色`.",
    "era": "Normalised period, e.g. `江戸時代`.",
    "century": "Century of the start date: `19` for 1801-1900, `-1` for 100-1 BCE.",
    "creator": "Creator as written.",
    "rights": "Rights URI (Creative Commons or RightsStatements.org).",
}

SEARCH_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "q",
        "in": "query",
        "required": False,
        "description": 'Free text in Japanese or English; "quoted phrases", `field:word`, '
        "`-exclude`; at most 32 words (a 400 names `q` beyond that). "
        "Empty lists everything.",
        "schema": {"type": "string", "maxLength": MAX_Q},
    },
    *(_string_param(f, _FACET_DESCRIPTIONS[f], repeat=True) for f in FACETS if f != "has_images"),
    _enum_param(
        "has_images", "Only records with (`true`) or without (`false`) images.", ("true", "false")
    ),
    _int_param(
        "year_from", "Objects made in or after this year (negative: BCE).", YEAR_MIN, YEAR_MAX
    ),
    _int_param(
        "year_to",
        "Objects made in or before this year. `year_from` after "
        "`year_to` is a 400 naming `year_from`.",
        YEAR_MIN,
        YEAR_MAX,
    ),
    _enum_param("sort", "Order of results.", SORTS, "relevance"),
    _enum_param(
        "semantic",
        "Also find records near the query in meaning (`true`, hybrid ranking), or only "
        "records whose text matches it (`false`: reproducible, as a citation needs). "
        "Quoted phrases and `field:` terms are never widened either way.",
        ("true", "false"),
        "true",
    ),
    _int_param("page", "Page of results, from 1.", 1, MAX_PAGE, 1),
    _int_param("size", "Results per page.", 1, MAX_PAGE_SIZE, 20),
    _LANG,
]

_STR = {"type": "string"}
_URL = {"type": "string", "format": "uri"}
_LANG_PAIR = {
    "type": "object",
    "required": ["ja", "en"],
    "properties": {"ja": _nullable(_STR), "en": _nullable(_STR)},
    "additionalProperties": False,
}

SCHEMAS: dict[str, Any] = {
    "Health": {
        "type": "object",
        "required": ["status", "version"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
            "version": _STR,
            "catalog": {
                "type": "object",
                "properties": {
                    "public_records": {"type": "integer"},
                    "last_modified": _nullable(_STR),
                    "error": _STR,
                },
            },
            "search": {
                "type": "object",
                "properties": {
                    "backend": _STR,
                    "reachable": {"type": "boolean"},
                    "documents": _nullable({"type": "integer"}),
                    "vectors": {
                        "type": "string",
                        "enum": ["on", "off"],
                        "description": "Whether records are embedded for search by meaning "
                        "and similar objects (the search_vectors setting).",
                    },
                    "with_vectors": {
                        "type": "integer",
                        "description": "Documents that have a vector (embedded index only).",
                    },
                    "behind": {"type": "string", "description": "Why the index misses changes."},
                    "error": _STR,
                },
            },
        },
    },
    "Error": {
        "type": "object",
        "required": ["error", "status"],
        "properties": {
            "error": _STR,
            "status": {"type": "integer"},
            "parameter": {"type": "string", "description": "The query parameter that was wrong."},
        },
    },
    "FacetValue": {
        "type": "object",
        "required": ["value", "label", "count"],
        "properties": {"value": _STR, "label": _STR, "count": {"type": "integer", "minimum": 0}},
        "additionalProperties": False,
    },
    "SearchItem": {
        "type": "object",
        "required": [
            "id",
            "local_id",
            "institution",
            "institution_name",
            "title",
            "thumbnail",
            "manifest",
            "url",
            "date",
            "highlights",
        ],
        "properties": {
            "id": {**_STR, "description": "Stable archive-wide record id."},
            "local_id": {**_STR, "description": "The id in the institution's own data."},
            "institution": _STR,
            "institution_name": _STR,
            "title": _STR,
            "thumbnail": {**_nullable(_URL), "description": "IIIF Image API thumbnail URL."},
            "manifest": {**_URL, "description": "IIIF Presentation 3.0 Manifest."},
            "url": {**_URL, "description": "The public page of the record."},
            "date": _nullable(_STR),
            "highlights": {
                "type": "object",
                "additionalProperties": _STR,
                "description": "Field -> HTML with <mark> around matches.",
            },
        },
        "additionalProperties": False,
    },
    "SearchResponse": {
        "type": "object",
        "required": ["total", "page", "size", "facets", "items"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            "facets": {
                "type": "object",
                "required": list(FACETS),
                "properties": {
                    f: {"type": "array", "items": {"$ref": "#/components/schemas/FacetValue"}}
                    for f in FACETS
                },
                "additionalProperties": False,
            },
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/SearchItem"}},
        },
        "additionalProperties": False,
    },
    "SuggestResponse": {
        "type": "object",
        "required": ["q", "suggestions"],
        "properties": {"q": _STR, "suggestions": {"type": "array", "items": _STR}},
        "additionalProperties": False,
    },
    "Image": {
        "type": "object",
        "required": ["id", "position", "width", "height", "service", "info", "full", "thumbnail"],
        "properties": {
            "id": {
                **_STR,
                "description": "Stable image id; /iiif/3/{id} always shows the current pixels.",
            },
            "position": {"type": "integer", "minimum": 1},
            "width": {
                "type": "integer",
                "minimum": 1,
                "description": "Width as served (after any size cap).",
            },
            "height": {"type": "integer", "minimum": 1},
            "service": {
                **_URL,
                "description": "IIIF Image API 3.0 service (base URI), under the id pinned to "
                "this version of the pixels ({id}.{tag}): cacheable for a year; after a "
                "re-ingest it redirects to the current version.",
            },
            "info": _URL,
            "full": _URL,
            "thumbnail": _URL,
        },
        "additionalProperties": False,
    },
    "SimilarResponse": {
        "type": "object",
        "required": ["id", "items"],
        "additionalProperties": False,
        "properties": {
            "id": _STR,
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "institution", "title", "thumbnail", "url", "record"],
                    "additionalProperties": False,
                    "properties": {
                        "id": _STR,
                        "institution": _STR,
                        "title": _STR,
                        "thumbnail": _nullable(_URL),
                        "url": _URL,
                        "record": _URL,
                    },
                },
            },
            "reason": {
                "type": "string",
                "description": "Why items is empty when this archive computes no "
                "similarities (search_vectors off).",
            },
        },
    },
    "Record": {
        "type": "object",
        "required": [
            "id",
            "local_id",
            "institution",
            "title",
            "fields",
            "extra",
            "normalised",
            "rights",
            "images",
            "thumbnail",
            "manifest",
            "url",
            "citation",
        ],
        "properties": {
            "id": _STR,
            "local_id": _STR,
            "institution": {
                "type": "object",
                "required": ["id", "name", "url", "collection"],
                "properties": {
                    "id": _STR,
                    "name": _LANG_PAIR,
                    "homepage": _nullable(_STR),
                    "url": _URL,
                    "collection": _URL,
                },
            },
            "title": {
                "type": "object",
                "required": ["ja", "en"],
                "properties": {"ja": _STR, "en": _STR},
            },
            "fields": {
                "type": "object",
                "description": "The mapped fields exactly as the institution wrote them.",
                "additionalProperties": {
                    "anyOf": [
                        _STR,
                        {"type": "array", "items": _STR},
                        {"type": "boolean"},
                        {"type": "integer"},
                    ]
                },
            },
            "extra": {
                "type": "array",
                "description": "Columns no field was mapped to, as label and value.",
                "items": {
                    "type": "object",
                    "required": ["label", "value"],
                    "properties": {"label": _STR, "value": _STR},
                },
            },
            "normalised": {
                "type": "object",
                "required": ["date_start", "date_end", "era", "century", "keywords", "has_images"],
                "properties": {
                    "title": _LANG_PAIR,
                    "creator": _LANG_PAIR,
                    "object_type": _LANG_PAIR,
                    "material": _LANG_PAIR,
                    "description": _LANG_PAIR,
                    "keywords": {"type": "array", "items": _STR},
                    "date_start": _nullable({"type": "integer"}),
                    "date_end": _nullable({"type": "integer"}),
                    "era": _nullable(_STR),
                    "century": _nullable({"type": "integer"}),
                    "has_images": {"type": "boolean"},
                },
            },
            "rights": {
                "type": "object",
                "required": ["uri", "label"],
                "description": "The record's licence or rights statement.",
                "properties": {
                    "uri": _nullable(_STR),
                    "label": _nullable({"type": "object", "properties": {"ja": _STR, "en": _STR}}),
                },
            },
            "images": {"type": "array", "items": {"$ref": "#/components/schemas/Image"}},
            "thumbnail": _nullable(_URL),
            "manifest": _URL,
            "url": _URL,
            "citation": {
                "type": "object",
                "required": ["ja", "en", "bibtex"],
                "properties": {"ja": _STR, "en": _STR, "bibtex": _STR},
            },
            "created_at": _nullable(_STR),
            "updated_at": _nullable(_STR),
            "readings": {
                "type": "object",
                "description": "Per field (title, creator, keywords, object_type, material), "
                "the reading search matches kana and romaji against, and where it came from: "
                "`curator` (the record's own reading) or `sudachi` (the morphological "
                "analyser).",
                "additionalProperties": {
                    "type": "object",
                    "required": ["reading", "source"],
                    "properties": {"reading": _STR, "source": {"enum": ["curator", "sudachi"]}},
                },
            },
        },
    },
}


def _iiif(
    summary: str,
    media_type: str,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A IIIF document: JSON-LD with its own JSON Schema (checked in the IIIF tests)."""
    doc = {
        "type": "object",
        "required": ["@context", "id", "type"],
        "properties": {"@context": {}, "id": _URL, "type": _STR},
    }
    return {
        "get": {
            "summary": summary,
            "tags": ["IIIF"],
            "parameters": params or [],
            "responses": {
                "200": {"description": "OK", "content": {media_type: {"schema": doc}}},
                "404": _ERROR,
            },
        }
    }


_PRESENTATION = "application/ld+json"
_INSTITUTION = {
    "name": "institution",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "Institution id, e.g. `noh-museum`.",
}
IIIF_PATHS: dict[str, Any] = {
    "/iiif/3/collection/top": _iiif(
        "Root IIIF Collection: one Collection per institution.", _PRESENTATION
    ),
    "/iiif/3/collection/{institution}": _iiif(
        "An institution's Manifests, or its pages when it has more than 1,000.",
        _PRESENTATION,
        [_INSTITUTION],
    ),
    "/iiif/3/collection/{institution}/{page}": _iiif(
        "Page of at most 1,000 Manifests of a large institution.",
        _PRESENTATION,
        [
            _INSTITUTION,
            {
                "name": "page",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
        ],
    ),
    "/iiif/3/manifest/{id}": _iiif(
        "IIIF Presentation 3.0 Manifest of a public record.",
        _PRESENTATION,
        [
            {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "Record id, e.g. `noh-museum_N-12`.",
            }
        ],
    ),
    "/iiif/3/activity/all-changes": _iiif(
        "IIIF Change Discovery 1.0 OrderedCollection of Create/Update/Delete activities.",
        _PRESENTATION,
    ),
    "/iiif/3/activity/page/{n}": _iiif(
        "Page n (from 0) of the change stream: 100 activities, oldest first.",
        _PRESENTATION,
        [
            {
                "name": "n",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        ],
    ),
}


def document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document, with ``base_url`` as its server."""
    json_ok = {"description": "OK", "content": {"application/json": {"schema": None}}}

    def ok(ref: str) -> dict[str, Any]:
        return {
            **json_ok,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }

    return {
        "openapi": "3.0.3",
        "info": {
            "title": "City Digital Museum research API",
            "version": "1.0.0",
            "description": "Search and read the public records of the city's cultural "
            "institutions, and export them in bulk. Images and objects are also "
            "available through IIIF: the Image API 3.0 at /iiif/3/{image id} and "
            "Presentation 3.0 manifests at /iiif/3/manifest/{record id}.",
        },
        "servers": [{"url": base_url}],
        "paths": {
            "/api/search": {
                "get": {
                    "operationId": "search",
                    "summary": "Search public records, with facet counts.",
                    "parameters": SEARCH_PARAMETERS,
                    "responses": {"200": ok("SearchResponse"), "400": _ERROR, "503": _ERROR},
                }
            },
            "/api/suggest": {
                "get": {
                    "operationId": "suggest",
                    "summary": "Completions for a prefix of a title, creator, type or keyword.",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "maxLength": SUGGEST_MAX_Q},
                        },
                        _int_param(
                            "limit", "How many suggestions at most.", 1, SUGGEST_MAX_LIMIT, 10
                        ),
                        _LANG,
                    ],
                    "responses": {"200": ok("SuggestResponse"), "400": _ERROR, "503": _ERROR},
                }
            },
            "/api/records/{id}": {
                "get": {
                    "operationId": "getRecord",
                    "summary": "One public record: every field, original and normalised.",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "description": "Record id, e.g. `noh-museum_N-12`.",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": ok("Record"), "404": _ERROR},
                }
            },
            "/api/records/{id}/similar": {
                "get": {
                    "operationId": "similarRecords",
                    "summary": "Public records nearest in meaning to this one, nearest first "
                    "(multilingual sentence embeddings, the ones search ranks by).",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "description": "Record id, e.g. `noh-museum_N-12`.",
                            "schema": {"type": "string"},
                        },
                        _int_param("limit", "How many records at most.", 1, MAX_SIMILAR, 10),
                        _LANG,
                    ],
                    "responses": {
                        "200": ok("SimilarResponse"),
                        "400": _ERROR,
                        "404": _ERROR,
                        "503": _ERROR,
                    },
                }
            },
            "/api/export.jsonl": {
                "get": {
                    "operationId": "exportJsonl",
                    "summary": "Every public record as JSON Lines (one Record per line), streamed.",
                    "responses": {
                        "200": {
                            "description": "JSON Lines",
                            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/api/export.csv": {
                "get": {
                    "operationId": "exportCsv",
                    "summary": "Every public record as CSV, UTF-8 with BOM, with its licence.",
                    "responses": {
                        "200": {
                            "description": "CSV",
                            "content": {"text/csv": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/api/health": {
                "get": {
                    "operationId": "health",
                    "summary": "For monitors: 200 ok, 200 degraded (search unreachable or "
                    "behind; records, manifests and images still answer), 503 unavailable.",
                    "responses": {
                        "200": ok("Health"),
                        "503": {
                            "description": "The catalog cannot be read",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                    },
                }
            },
            **IIIF_PATHS,
        },
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "Error": {
                    "description": "Error, naming the bad parameter",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
        },
    }
