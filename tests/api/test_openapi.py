"""The API keeps its OpenAPI 3 promise: schemathesis generates requests from
/api/openapi.json (valid and invalid ones, all its phases) and runs them in-process
against the real app on the ingested samples; every response must pass its default
checks: no 500s, statuses, content types and bodies as the document says.

In-process (WSGI), so every generated request reaches our code exactly as generated,
and a failure points at our code rather than at the HTTP server in front of it.
"""

from __future__ import annotations

import json

import schemathesis
from schemathesis.engine import Status, events, from_schema

from search.base import FACETS

# Two limits the OpenAPI document states in words because JSON Schema cannot express them
# (one spans two parameters, one counts words the search parser's way). A request that
# breaks one is schema-valid yet rightly a 400 naming the parameter; only those 400s are
# accepted from positive_data_acceptance, every other rejection still fails the test.
DOCUMENTED_400S = {("q", "more than 32 words"), ("year_from", "is after year_to")}


def documented_rejection(recorder, case_id: str) -> bool:
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction else None
    if response is None or response.status_code != 400:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return any(
        body.get("parameter") == name and text in body.get("error", "")
        for name, text in DOCUMENTED_400S
    )


def run_schemathesis(app, max_examples: int = 30) -> tuple[int, list[str]]:
    """Run every phase with the default checks; (checks run, failure descriptions)."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    schema.config.generation.update(max_examples=max_examples)
    # The in-process client does not undo gzip; compression is tested on its own.
    schema.config.update(headers={"Accept-Encoding": "identity"})
    checked, failures = 0, []
    for event in from_schema(schema).execute():
        if isinstance(event, events.FatalError | events.NonFatalError):
            failures.append(f"error: {event!r}")
        if not isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            continue
        for case_id, checks in event.recorder.checks.items():
            for check in checks:
                checked += 1
                if check.name == "positive_data_acceptance" and documented_rejection(
                    event.recorder, case_id
                ):
                    continue
                if check.status != Status.SUCCESS:
                    info = check.failure_info
                    failures.append(
                        f"{check.name}: {info.failure.title if info else '?'}"
                        f"\n  {info.code_sample[:400] if info else ''}"
                    )
    return checked, sorted(set(failures))


def test_api_passes_schemathesis_default_checks(app):
    checked, failures = run_schemathesis(app)
    assert checked > 500, "schemathesis ran too few checks to mean anything"
    assert not failures, "\n".join(failures)


def test_openapi_document_describes_every_search_parameter(client):
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.")
    names = {p["name"] for p in doc["paths"]["/api/search"]["get"]["parameters"]}
    assert names == {
        "q",
        *FACETS,
        "year_from",
        "year_to",
        "sort",
        "page",
        "size",
        "lang",
        "semantic",
    }
    for path in (
        "/api/search",
        "/api/suggest",
        "/api/records/{id}",
        "/api/export.jsonl",
        "/api/export.csv",
    ):
        assert path in doc["paths"]
    assert doc["servers"] == [{"url": "http://localhost"}]


def test_api_json_is_gzipped_only_when_asked(client):
    import gzip

    plain = client.get("/api/search?size=50")
    assert "Content-Encoding" not in plain.headers
    packed = client.get("/api/search?size=50", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
