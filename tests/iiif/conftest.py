"""Fixtures for the Image API tests: real pyramids written by ingest's tiler, real
catalog records, and a Flask app with just the Image API blueprint on them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import pyvips
from flask import Flask

from archive.config import Config
from archive.context import Archive
from archive.records import ImageRef, Institution, Record, image_id, record_id
from ingest.tiling import write_pyramid

RIGHTS = "http://rightsstatements.org/vocab/InC/1.0/"


def pattern(width: int, height: int) -> pyvips.Image:
    """Red = x mod 256, green = y mod 256, blue 128: every pixel says where it is."""
    xyz = pyvips.Image.xyz(width, height)
    return (xyz % 256).bandjoin(128).cast("uchar").copy(interpretation="srgb")


def noise(width: int, height: int) -> pyvips.Image:
    """High-frequency detail: what a cap must not let through."""
    band = pyvips.Image.gaussnoise(width, height, sigma=60, mean=128).cast("uchar")
    return band.bandjoin([band.rot180().flip("horizontal"), band.flip("vertical")]).copy(
        interpretation="srgb"
    )


def add_image(
    archive: Archive,
    local_id: str,
    image: pyvips.Image,
    *,
    public: bool = True,
    cap: int = 0,
    institution: str = "test-museum",
    version: str = "v1",
) -> str:
    """Tile ``image`` into the store and catalogue it as the one image of a record."""
    catalog = archive.catalog
    catalog.put_institution(Institution(institution, {"ja": "試験館", "en": "Test Museum"}, RIGHTS))
    rec_id = record_id(institution, local_id)
    img_id = image_id(rec_id, f"images/{local_id}.tif")
    temp = archive.images.temp_path()
    write_pyramid(image, temp, tile_size=archive.config.tile_size)
    archive.images.commit(temp, img_id, version)
    record = Record(
        id=rec_id,
        institution=institution,
        local_id=local_id,
        fields={"id": local_id, "title": f"資料 {local_id}"},
        public=public,
        rights=RIGHTS,
        max_image_size=cap,
        images=[
            ImageRef(
                img_id,
                f"images/{local_id}.tif",
                width=image.width,
                height=image.height,
                version=version,
            )
        ],
    )
    catalog.put_record(record)
    return img_id


@pytest.fixture(name="add_image", scope="session")
def add_image_fixture() -> Callable[..., str]:
    return add_image


@pytest.fixture(name="pattern", scope="session")
def pattern_fixture() -> Callable[[int, int], pyvips.Image]:
    return pattern


@pytest.fixture(name="noise", scope="session")
def noise_fixture() -> Callable[[int, int], pyvips.Image]:
    return noise


@pytest.fixture
def image_archive(config: Config):
    archive = Archive(config)
    yield archive
    archive.close()


@pytest.fixture
def make_image(image_archive: Archive) -> Callable[..., str]:
    def make(local_id: str, image: pyvips.Image | None = None, **kwargs) -> str:
        return add_image(image_archive, local_id, image or pattern(1000, 700), **kwargs)

    return make


@pytest.fixture
def image_app(image_archive: Archive) -> Flask:
    from iiif.routes import image_blueprint

    app = Flask(__name__)
    app.config["TESTING"] = True
    app.register_blueprint(image_blueprint(image_archive))
    return app


@pytest.fixture
def iclient(image_app: Flask):
    return image_app.test_client()
