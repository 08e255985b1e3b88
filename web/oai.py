"""OAI-PMH 2.0 at /oai: the protocol libraries and national aggregators (NDL Search and
Japan Search among them) harvest metadata with, beside IIIF Change Discovery.

Records are items, institutions are sets, ``oai_dc`` (Dublin Core, ja and en with
xml:lang) is the format. What a harvester sees comes from the catalog's change log: a
record's newest change says whether it is public now (Create/Update) or gone or hidden
(Delete, listed as a deleted header: deletedRecord "transient", as the log is the
record of deletions). Lists are paged by resumption tokens that carry the position in
the log, so a harvest is consistent while an ingest runs: nothing is skipped, and a
record changed mid-harvest appears again later with its new datestamp.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, g, request

from archive.catalog import Change
from archive.context import Archive
from archive.errors import NotFound
from archive.records import RECORD_ID_RE, Institution, Record
from iiif.presentation import Links
from iiif.routes import finish_response, request_links

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
for _prefix, _uri in (("", OAI), ("oai_dc", OAI_DC), ("dc", DC), ("xsi", XSI)):
    ET.register_namespace(_prefix, _uri)

PAGE = 100  # records or headers per response
FORMATS = {
    "oai_dc": (f"{OAI_DC} http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC),
}
# Arguments each verb takes: (required, optional); a resumptionToken is exclusive.
VERBS: dict[str, tuple[set[str], set[str]]] = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), {"resumptionToken"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class OAIError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _text(value: Any) -> str:
    """Text as XML 1.0 can carry it (control characters dropped)."""
    return _NOT_XML.sub("", str(value))


def _sub(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = _text(text)
    return el


def _timestamp(value: str, *, end: bool) -> tuple[str, str]:
    """An OAI datestamp argument as a full UTC timestamp, and its granularity."""
    if _SECOND.match(value):
        stamp, granularity = value, "second"
    elif _DAY.match(value):
        stamp, granularity = value + ("T23:59:59Z" if end else "T00:00:00Z"), "day"
    else:
        raise OAIError("badArgument", f"{value!r} is not YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ")
    try:
        datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise OAIError("badArgument", f"{value!r} is not a date") from None
    return stamp, granularity


def _valid_state(state: Any) -> bool:
    """A decoded resumption token as list_items wrote it."""
    if not isinstance(state, dict) or set(state) != {
        "after",
        "set",
        "since",
        "until",
        "prefix",
        "cursor",
    }:
        return False
    counts = (state["after"], state["cursor"])
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        return False
    stamps = (state["since"], state["until"])
    return (
        state["prefix"] in FORMATS
        and (state["set"] is None or isinstance(state["set"], str))
        and all(s is None or (isinstance(s, str) and _SECOND.match(s)) for s in stamps)
    )


def dublin_core(record: Record, inst: Institution, links: Links) -> ET.Element:
    """The record as oai_dc: both languages where the curators gave both."""
    root = ET.Element(
        f"{{{OAI_DC}}}dc",
        {f"{{{XSI}}}schemaLocation": FORMATS["oai_dc"][0]},
    )

    def both(tag: str, name: str) -> None:
        for value, lang in ((record.get(name), "ja"), (record.get(f"{name}_en"), "en")):
            if value:
                _sub(root, f"{{{DC}}}{tag}", value, **{XML_LANG: lang})

    both("title", "title")
    both("creator", "creator")
    both("type", "object_type")
    both("format", "material")
    if record.get("dimensions"):
        _sub(root, f"{{{DC}}}format", record.get("dimensions"))
    both("description", "description")
    for keyword in record.get("keywords") or []:
        _sub(root, f"{{{DC}}}subject", keyword)
    if record.get("date"):
        _sub(root, f"{{{DC}}}date", record.get("date"))
    if record.date_start is not None:
        end = record.date_end if record.date_end is not None else record.date_start
        _sub(
            root,
            f"{{{DC}}}date",
            f"{record.date_start}/{end}" if end != record.date_start else str(record.date_start),
        )
    for value, lang in ((inst.name.get("ja"), "ja"), (inst.name.get("en"), "en")):
        if value:
            _sub(root, f"{{{DC}}}publisher", value, **{XML_LANG: lang})
    _sub(root, f"{{{DC}}}identifier", links.object_page(record.id))
    _sub(root, f"{{{DC}}}identifier", record.local_id)
    if record.images:
        _sub(root, f"{{{DC}}}relation", links.manifest(record.id))
        _sub(root, f"{{{DC}}}type", "StillImage")
    rights = record.rights or inst.rights
    if rights:
        _sub(root, f"{{{DC}}}rights", rights)
    return root


def oai_blueprint(archive: Archive) -> Blueprint:
    bp = Blueprint("oai", __name__)
    catalog = archive.catalog
    config = archive.config

    def base_url() -> str:
        return request_links(archive).base + "/oai"

    def namespace() -> str:
        """The identifiers' namespace (the public host), worked out once a request."""
        if "oai_namespace" not in g:
            g.oai_namespace = urlsplit(base_url()).hostname or "localhost"
        return g.oai_namespace

    def oai_id(record_id: str) -> str:
        return f"oai:{namespace()}:{record_id}"

    def record_id_of(identifier: str) -> str:
        prefix = f"oai:{namespace()}:"
        rec_id = identifier[len(prefix) :] if identifier.startswith(prefix) else ""
        if not RECORD_ID_RE.match(rec_id):
            raise OAIError("idDoesNotExist", f"no item {identifier!r} in this repository")
        return rec_id

    def institutions() -> dict[str, Institution]:
        return {inst.id: inst for inst in catalog.institutions()}

    def header(parent: ET.Element, change: Change) -> None:
        attrs = {"status": "deleted"} if change.kind == "Delete" else {}
        el = _sub(parent, f"{{{OAI}}}header", **attrs)
        _sub(el, f"{{{OAI}}}identifier", oai_id(change.record_id))
        _sub(el, f"{{{OAI}}}datestamp", change.at)
        _sub(el, f"{{{OAI}}}setSpec", change.institution)

    def record_el(parent, change: Change, record: Record | None, insts, links) -> None:
        el = _sub(parent, f"{{{OAI}}}record")
        if record is None:  # hidden or gone since the change was read: say deleted
            change = Change(change.seq, change.record_id, change.institution, "Delete", change.at)
        header(el, change)
        if change.kind != "Delete":
            metadata = _sub(el, f"{{{OAI}}}metadata")
            metadata.append(dublin_core(record, insts[record.institution], links))

    def check_prefix(args: dict[str, str]) -> None:
        if args["metadataPrefix"] not in FORMATS:
            raise OAIError(
                "cannotDisseminateFormat",
                f"metadataPrefix {args['metadataPrefix']!r}: only oai_dc is offered",
            )

    def list_args(args: dict[str, str]) -> dict[str, Any]:
        """The list's parameters, from the arguments or from the resumption token."""
        if "resumptionToken" in args:
            token = args["resumptionToken"]
            try:
                state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            except ValueError:  # binascii.Error, bad UTF-8 and bad JSON are all ValueErrors
                state = None
            if not _valid_state(state):
                raise OAIError("badResumptionToken", "the resumptionToken is not one of ours")
            return state
        check_prefix(args)
        since = until = None
        granularities = set()
        if "from" in args:
            since, g = _timestamp(args["from"], end=False)
            granularities.add(g)
        if "until" in args:
            until, g = _timestamp(args["until"], end=True)
            granularities.add(g)
        if len(granularities) > 1:
            raise OAIError("badArgument", "from and until must have the same granularity")
        if since and until and since > until:
            raise OAIError("badArgument", "from is after until")
        return {
            "after": 0,
            "set": args.get("set"),
            "since": since,
            "until": until,
            "prefix": args["metadataPrefix"],
            "cursor": 0,
        }

    def list_items(verb: str, args: dict[str, str], root: ET.Element) -> None:
        state = list_args(args)
        changes = catalog.latest_changes(
            after=state["after"],
            institution=state["set"],
            since=state["since"],
            until=state["until"],
            limit=PAGE + 1,
        )
        if not changes and state["after"] == 0:
            raise OAIError("noRecordsMatch", "no records match these arguments")
        more = len(changes) > PAGE
        changes = changes[:PAGE]
        out = _sub(root, f"{{{OAI}}}{verb}")
        if verb == "ListIdentifiers":
            for change in changes:
                header(out, change)
        else:
            links, insts = request_links(archive), institutions()
            wanted = [c.record_id for c in changes if c.kind != "Delete"]
            records = {r.id: r for r in catalog.get_records(wanted)}
            for change in changes:
                record_el(out, change, records.get(change.record_id), insts, links)
        if more or state["after"]:
            cursor = state["cursor"]
            token = ""
            if more:
                following = {**state, "after": changes[-1].seq, "cursor": cursor + len(changes)}
                token = (
                    base64.urlsafe_b64encode(json.dumps(following).encode()).decode().rstrip("=")
                )
            _sub(out, f"{{{OAI}}}resumptionToken", token, cursor=str(cursor))

    def identify(root: ET.Element) -> None:
        el = _sub(root, f"{{{OAI}}}Identify")
        _sub(el, f"{{{OAI}}}repositoryName", f"{config.site_name_ja} / {config.site_name_en}")
        _sub(el, f"{{{OAI}}}baseURL", base_url())
        _sub(el, f"{{{OAI}}}protocolVersion", "2.0")
        _sub(el, f"{{{OAI}}}adminEmail", config.admin_email or f"webmaster@{namespace()}")
        earliest = catalog.earliest_change() or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _sub(el, f"{{{OAI}}}earliestDatestamp", earliest)
        _sub(el, f"{{{OAI}}}deletedRecord", "transient")
        _sub(el, f"{{{OAI}}}granularity", "YYYY-MM-DDThh:mm:ssZ")

    def answer(verb: str | None, args: dict[str, str], root: ET.Element) -> None:
        if verb == "Identify":
            identify(root)
        elif verb == "ListMetadataFormats":
            if "identifier" in args:
                try:
                    catalog.get_record(record_id_of(args["identifier"]))
                except NotFound:
                    raise OAIError("idDoesNotExist", f"no item {args['identifier']!r}") from None
            el = _sub(root, f"{{{OAI}}}ListMetadataFormats")
            for prefix, (schema, ns) in FORMATS.items():
                fmt = _sub(el, f"{{{OAI}}}metadataFormat")
                _sub(fmt, f"{{{OAI}}}metadataPrefix", prefix)
                _sub(fmt, f"{{{OAI}}}schema", schema.split()[1])
                _sub(fmt, f"{{{OAI}}}metadataNamespace", ns)
        elif verb == "ListSets":
            if "resumptionToken" in args:
                raise OAIError("badResumptionToken", "ListSets is complete in one response")
            el = _sub(root, f"{{{OAI}}}ListSets")
            for inst in institutions().values():
                item = _sub(el, f"{{{OAI}}}set")
                _sub(item, f"{{{OAI}}}setSpec", inst.id)
                names = [inst.name.get("ja"), inst.name.get("en")]
                _sub(item, f"{{{OAI}}}setName", " / ".join(n for n in names if n) or inst.id)
        elif verb == "GetRecord":
            check_prefix(args)
            rec_id = record_id_of(args["identifier"])
            try:
                record = catalog.get_record(rec_id)
            except NotFound:
                record = None
            changes = catalog.latest_changes(record_id=rec_id, limit=1)
            if not changes:
                raise OAIError("idDoesNotExist", f"no item {args['identifier']!r}")
            el = _sub(root, f"{{{OAI}}}GetRecord")
            record_el(el, changes[0], record, institutions(), request_links(archive))
        else:
            list_items(verb, args, root)

    @bp.route("/oai", methods=["GET", "POST"])
    def oai() -> Response:
        """One OAI-PMH request (GET query or POST form, §3.1.1)."""
        source = request.form if request.method == "POST" else request.args
        root = ET.Element(
            f"{{{OAI}}}OAI-PMH",
            {f"{{{XSI}}}schemaLocation": f"{OAI} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"},
        )
        _sub(root, f"{{{OAI}}}responseDate", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        req = _sub(root, f"{{{OAI}}}request", base_url())
        verb = source.get("verb")
        try:
            repeated = [k for k in source if len(source.getlist(k)) > 1]
            if repeated:
                raise OAIError("badArgument", f"repeated argument(s): {', '.join(repeated)}")
            if verb not in VERBS:
                raise OAIError("badVerb", f"verb {verb!r} is not an OAI-PMH verb")
            args = {k: source[k] for k in source if k != "verb"}
            required, optional = VERBS[verb]
            unknown = set(args) - required - optional
            if unknown:
                raise OAIError("badArgument", f"{verb} takes no {', '.join(sorted(unknown))}")
            if "resumptionToken" in args and len(args) > 1:
                raise OAIError("badArgument", "resumptionToken is an exclusive argument")
            missing = required - set(args) if "resumptionToken" not in args else set()
            if missing:
                raise OAIError("badArgument", f"{verb} needs {', '.join(sorted(missing))}")
            req.set("verb", verb)
            for key, value in args.items():
                req.set(key, _text(value))
            answer(verb, args, root)
        except OAIError as exc:
            if exc.code in ("badVerb", "badArgument"):  # §3.6: no attributes echoed
                req.attrib.clear()
            _sub(root, f"{{{OAI}}}error", str(exc), code=exc.code)
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return Response(body, content_type="text/xml; charset=utf-8")

    bp.after_request(finish_response)  # CORS, as on every machine-readable path
    return bp
