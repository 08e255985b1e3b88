"""The storage contract on the local folder (the default), and what only it has."""

from __future__ import annotations

import pytest
from storage_contract import IMG, StoreContract, commit_bytes

from archive.config import Config
from archive.context import Archive
from archive.errors import ConfigError
from archive.storage import Home, ImageStore, open_store


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        return ImageStore(tmp_path / "home" / "images", tmp_path / "home" / "reports")


def test_the_default_is_today_s_layout(home):
    archive = Archive(Config.load(home, environ={}))
    try:
        assert isinstance(archive.images, ImageStore)
        assert archive.images.root == (home / "images").resolve()
        commit_bytes(archive.images, IMG, "v1", b"x")
        assert archive.images.path(IMG, "v1").parent.parent == home.resolve() / "images"
        archive.images.put_report("ingest-20260101T000000000000Z.json", b"{}")
        assert (home / "reports" / "ingest-20260101T000000000000Z.json").is_file()
    finally:
        archive.close()


@pytest.mark.parametrize(
    "url", ["http://bucket/x", "bucket/prefix", "gs://bucket", "s3://", "s3://Bad_Bucket/x"]
)
def test_a_wrong_storage_url_is_a_config_error_naming_the_setting(home, url):
    config = Config.load(home, environ={"ARCHIVE_STORAGE_URL": url})
    with pytest.raises(ConfigError, match="storage_url"):
        open_store(config, Home(home))
