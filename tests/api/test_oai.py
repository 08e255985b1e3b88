"""OAI-PMH 2.0 at /oai: harvested by a real harvester (Sickle) from a real server, paged
by resumption tokens, deletions as deleted headers, and every protocol error (§3.6)."""

from __future__ import annotations

import base64
from xml.etree import ElementTree as ET

import pytest
from sickle import Sickle

from archive.config import Config
from archive.records import ImageRef, Institution, Record, image_id, record_id

NS = {
    "o": "http://www.openarchives.org/OAI/2.0/",
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
    "dc": "http://purl.org/dc/elements/1.1/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def oai(client, query: str = "", *, post: bool = False) -> ET.Element:
    resp = (
        client.post("/oai", data=query, content_type="application/x-www-form-urlencoded")
        if post
        else client.get(f"/oai?{query}")
    )
    assert resp.status_code == 200 and resp.mimetype == "text/xml"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"  # harvesters in browsers too
    return ET.fromstring(resp.get_data())


def error_code(root: ET.Element) -> str | None:
    err = root.find("o:error", NS)
    return None if err is None else err.get("code")


def harvest(client, verb: str, first: str) -> tuple[list[ET.Element], list[ET.Element]]:
    """Follow resumption tokens to the end: (items, resumptionToken elements)."""
    items, tokens, query = [], [], f"verb={verb}&{first}"
    child = "o:record" if verb == "ListRecords" else "o:header"
    while True:
        root = oai(client, query)
        assert error_code(root) is None, ET.tostring(root)
        listing = root.find(f"o:{verb}", NS)
        items += listing.findall(child, NS)
        token = listing.find("o:resumptionToken", NS)
        if token is None or not token.text:
            if token is not None:
                tokens.append(token)
            return items, tokens
        tokens.append(token)
        query = f"verb={verb}&resumptionToken={token.text}"


def test_a_real_harvester_gets_every_public_record_in_both_languages(live_server, app):
    catalog = app.extensions["archive"].catalog
    sickle = Sickle(f"{live_server}/oai")
    identify = sickle.Identify()
    assert "City Digital Museum" in identify.repositoryName
    assert identify.deletedRecord == "transient" and identify.protocolVersion == "2.0"
    sets = {s.setSpec for s in sickle.ListSets()}
    assert sets == {inst.id for inst in catalog.institutions()}

    records = list(sickle.ListRecords(metadataPrefix="oai_dc"))
    ids = {r.header.identifier.rsplit(":", 1)[1] for r in records}
    assert ids == set(catalog.record_ids())
    assert all(r.metadata["title"] for r in records)

    one = sickle.GetRecord(identifier="oai:127.0.0.1:noh-museum_N-12", metadataPrefix="oai_dc")
    assert one.header.setSpecs == ["noh-museum"]
    assert one.metadata["title"][0] == catalog.get_record("noh-museum_N-12").get("title")
    assert any(u.endswith("/iiif/3/manifest/noh-museum_N-12") for u in one.metadata["relation"])


def test_titles_carry_their_language(client, app):
    root = oai(
        client, "verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:localhost:noh-museum_N-12"
    )
    record = app.extensions["archive"].catalog.get_record("noh-museum_N-12")
    titles = [(t.get(XML_LANG), t.text) for t in root.findall(".//dc:title", NS)]
    assert titles == [("ja", record.get("title")), ("en", record.get("title_en"))]


def test_resumption_tokens_page_through_everything_once(client, app, monkeypatch):
    import web.oai

    monkeypatch.setattr(web.oai, "PAGE", 7)
    catalog = app.extensions["archive"].catalog
    headers, tokens = harvest(client, "ListIdentifiers", "metadataPrefix=oai_dc")
    ids = [h.find("o:identifier", NS).text.rsplit(":", 1)[1] for h in headers]
    assert len(ids) == len(set(ids)) and set(ids) == set(catalog.record_ids())
    assert len(tokens) == -(-len(ids) // 7)  # one a page: the next page's, the last empty
    assert tokens[-1].text is None and tokens[-1].get("cursor") == str(7 * (len(tokens) - 1))
    records, _ = harvest(client, "ListRecords", "metadataPrefix=oai_dc&set=noh-museum")
    assert {r.find("o:header/o:setSpec", NS).text for r in records} == {"noh-museum"}
    assert len(records) == catalog.count("noh-museum")


@pytest.fixture
def small(home):
    """An archive of one institution the test changes, and a client on it."""
    from web import create_app

    app = create_app(Config.load(home, environ={}))
    catalog = app.extensions["archive"].catalog
    catalog.put_institution(
        Institution(
            "tiny", {"ja": "小さな館", "en": "Tiny"}, "http://rightsstatements.org/vocab/InC/1.0/"
        )
    )

    def put(local: str, *, public: bool = True, title: str = "茶碗") -> None:
        rid = record_id("tiny", local)
        catalog.put_record(
            Record(
                id=rid,
                institution="tiny",
                local_id=local,
                fields={"id": local, "title": title},
                public=public,
                images=[
                    ImageRef(image_id(rid, "a.jpg"), "a.jpg", width=10, height=10, version="v1")
                ],
            )
        )

    yield app.test_client(), put, catalog
    app.extensions["archive"].close()


def test_hidden_and_deleted_records_are_deleted_headers(small):
    client, put, catalog = small
    put("A")
    put("B")
    put("C")
    put("B", public=False)  # hidden after publication
    catalog.delete_record(record_id("tiny", "C"))
    records, _ = harvest(client, "ListRecords", "metadataPrefix=oai_dc")
    state = {
        r.find("o:header/o:identifier", NS).text.rsplit(":", 1)[1]: (
            r.find("o:header", NS).get("status"),
            r.find("o:metadata", NS) is not None,
        )
        for r in records
    }
    assert state == {
        "tiny_A": (None, True),
        "tiny_B": ("deleted", False),
        "tiny_C": ("deleted", False),
    }
    got = oai(client, "verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:localhost:tiny_B")
    assert got.find(".//o:header", NS).get("status") == "deleted"
    assert got.find(".//o:metadata", NS) is None


def test_from_and_until_select_by_datestamp(small):
    client, put, _ = small
    put("A")
    root = oai(client, "verb=ListIdentifiers&metadataPrefix=oai_dc&from=2000-01-01")
    [header] = root.findall(".//o:header", NS)
    stamp = header.find("o:datestamp", NS).text
    day = stamp[:10]
    for query in (f"from={stamp}", f"until={stamp}", f"from={day}&until={day}"):
        root = oai(client, f"verb=ListIdentifiers&metadataPrefix=oai_dc&{query}")
        assert len(root.findall(".//o:header", NS)) == 1, query
    root = oai(client, "verb=ListIdentifiers&metadataPrefix=oai_dc&from=2999-01-01")
    assert error_code(root) == "noRecordsMatch"


def test_control_characters_in_metadata_still_make_well_formed_xml(small):
    client, put, _ = small
    put("A", title="茶\x01碗\x0b")
    root = oai(client, "verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:localhost:tiny_A")
    assert root.find(".//dc:title", NS).text == "茶碗"


def test_post_answers_like_get(client):
    root = oai(client, "verb=ListSets", post=True)
    assert len(root.findall(".//o:set", NS)) == 5


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "badVerb"),
        ("verb=Harvest", "badVerb"),
        ("verb=Identify&verb=Identify", "badArgument"),
        ("verb=Identify&extra=1", "badArgument"),
        ("verb=ListRecords", "badArgument"),
        ("verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01&until=2019-01-01", "badArgument"),
        (
            "verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01&until=2021-01-01T00:00:00Z",
            "badArgument",
        ),
        ("verb=ListRecords&metadataPrefix=oai_dc&from=2020-13-45", "badArgument"),
        ("verb=ListRecords&metadataPrefix=oai_dc&resumptionToken=x", "badArgument"),
        ("verb=GetRecord&identifier=oai:localhost:noh-museum_N-12", "badArgument"),
        ("verb=ListRecords&metadataPrefix=marc21", "cannotDisseminateFormat"),
        ("verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:localhost:nope_X", "idDoesNotExist"),
        ("verb=GetRecord&metadataPrefix=oai_dc&identifier=noh-museum_N-12", "idDoesNotExist"),
        ("verb=ListMetadataFormats&identifier=oai:localhost:nope_X", "idDoesNotExist"),
        ("verb=ListRecords&metadataPrefix=oai_dc&set=no-such-museum", "noRecordsMatch"),
        ("verb=ListRecords&resumptionToken=%%%", "badResumptionToken"),
        (f"verb=ListRecords&resumptionToken={_token('[1, 2]')}", "badResumptionToken"),
        ("verb=ListIdentifiers&resumptionToken=" + _token('{"after": -1}'), "badResumptionToken"),
        ("verb=ListSets&resumptionToken=abc", "badResumptionToken"),
    ],
)
def test_protocol_errors(client, query, code):
    root = oai(client, query)
    assert error_code(root) == code, ET.tostring(root)
    if code in ("badVerb", "badArgument"):  # §3.6: the request element then has no attributes
        assert root.find("o:request", NS).attrib == {}
