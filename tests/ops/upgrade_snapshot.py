"""What an archive home serves, as one JSON document: run by tests/ops/test_upgrade.py
under an earlier commit's code and under today's, on the same home.

Only interfaces every release has had: ``Config.load``, ``web.create_app`` and its test
client, the catalog's ``records``. Usage: ``python upgrade_snapshot.py HOME OUT.json``.
"""

from __future__ import annotations

import hashlib
import json
import sys

QUERIES = ("能", "茶碗", "lacquer", "江戸", "")


def main(home: str, out: str) -> None:
    import archive
    from archive.config import Config
    from web import create_app

    app = create_app(Config.load(home, environ={}))
    client = app.test_client()
    catalog = app.extensions["archive"].catalog
    snapshot = {"code": archive.__file__, "records": {}, "tiles": {}, "manifests": {}}
    for record in catalog.records(public_only=False):
        data = record.to_dict()
        snapshot["records"][record.id] = data
        if not record.public:
            continue
        resp = client.get(f"/iiif/3/manifest/{record.id}")
        manifest = resp.get_json()
        snapshot["manifests"][record.id] = {
            "status": resp.status_code,
            "label": manifest.get("label"),
            "canvases": [
                (canvas["width"], canvas["height"]) for canvas in manifest.get("items", [])
            ],
        }
        for image in record.images:
            tile = client.get(f"/iiif/3/{image.id}/0,0,256,256/256,/0/default.jpg")
            info = client.get(f"/iiif/3/{image.id}/info.json").get_json()
            snapshot["tiles"][image.id] = {
                "status": tile.status_code,
                "sha256": hashlib.sha256(tile.data).hexdigest(),
                "size": [info["width"], info["height"]],
            }
    snapshot["search"] = {q: [hit["id"] for hit in search(client, q)] for q in QUERIES}
    app.extensions["archive"].close()
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(snapshot, fh, ensure_ascii=False, indent=1, sort_keys=True)


def search(client, q: str) -> list[dict]:
    """The hits of a text search: what an upgrade must keep. Today's default also finds
    records near the query in meaning (hybrid ranking, a feature and not an upgrade's
    doing), so it is asked for text matches only; releases before that option reject or
    ignore the parameter, and give text matches anyway."""
    resp = client.get(f"/api/search?q={q}&size=100&semantic=false")
    if resp.status_code == 400:
        resp = client.get(f"/api/search?q={q}&size=100")
    return resp.get_json()["items"]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
