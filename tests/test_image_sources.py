"""Sources beyond the browser formats (TIFF, HEIC, 12-bit JPEG, AVIF) and ``info=1``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests import media_factory
from tests.answers import body, corner, json_error, near, refusal
from tests.test_images import BLUE, RED, YELLOW, get_image

pytestmark = pytest.mark.django_db

WHITE16 = 65535


@pytest.fixture
def tiffs(media_root):
    quadrants8, quadrants16 = media_factory.quadrant_array(120, 60), media_factory.quadrant_array(120, 60, WHITE16)
    opaque16 = np.full((60, 120, 1), WHITE16)
    cyan_cmyk = np.dstack([np.full((60, 120), 255), np.zeros((60, 120)), np.zeros((60, 120)), np.zeros((60, 120))])
    return {
        "rgb8.tif": media_factory.tiff(media_root / "rgb8.tif", [quadrants8]),
        "rgb16.tif": media_factory.tiff(media_root / "rgb16.tif", [quadrants16], bits=16),
        "rgba16.tif": media_factory.tiff(media_root / "rgba16.tif", [np.dstack([quadrants16, opaque16])], bits=16),
        "grey16.tif": media_factory.tiff(media_root / "grey16.tif", [quadrants16[:, :, 0]], bits=16),
        "cmyk.tif": media_factory.tiff(media_root / "cmyk.tif", [cyan_cmyk], photometric=5),
        "pages.tif": media_factory.tiff(media_root / "pages.tif", [quadrants8, media_factory.quadrant_array(30, 20)]),
    }


@pytest.mark.parametrize("name", ["rgb8.tif", "rgb16.tif", "rgba16.tif", "pages.tif"])
def test_tiff_colour_sources_decode_to_the_right_size_and_colours(client, tiffs, name):
    response = client.get(f"/{name}?size=60x60")
    # TIFF is read, never written: the result is JPEG, or PNG when the source has alpha
    assert response["Content-Type"] == ("image/png" if "rgba" in name else "image/jpeg")
    image = media_factory.decode(body(response))
    assert image.size == (60, 30)
    assert near(corner(image, "top left"), RED) and near(corner(image, "bottom right"), YELLOW)


def test_tiff_grey_and_cmyk_sources(client, tiffs):
    grey = get_image(client, "/grey16.tif?size=60x60")
    assert grey.mode == "L" and grey.getpixel((5, 5)) > 240 and grey.getpixel((5, 25)) < 15  # red's R, blue's R
    cyan = get_image(client, "/cmyk.tif?size=60x60&format=png")
    assert near(cyan.convert("RGB").getpixel((30, 15)), (0, 255, 255), 60)


def test_heic_source_upright_and_refused_by_the_tool_engines(client, media_root):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 200x100, shown 100x200 with the red quadrant top right
    media_factory.heic(media_root / "phone.heic", media_factory.photo(200, 100), exif=exif.tobytes(), quality=90)
    image = get_image(client, "/phone.heic?size=50x100")
    assert image.size == (50, 100) and near(corner(image, "top right"), RED, 50)
    webp = client.get("/phone.heic?size=50x100&format=webp")
    assert webp["Content-Type"] == "image/webp" and media_factory.decode(body(webp)).size == (50, 100)
    for engine in ("convert", "cjpeg"):
        error = refusal(client, f"/phone.heic?size=50x50&engine={engine}", 400)
        assert error["parameter"] == "engine" and "HEIC" in error["message"]


def test_twelve_bit_jpeg_is_decoded_through_ffmpeg(client, media_root, tool_children):
    media_factory.jpeg12(media_root / "deep.jpg", media_factory.photo(200, 96))
    with tool_children():
        image = get_image(client, "/deep.jpg?size=100x100")
        assert image.size == (100, 48) and image.format == "JPEG"
        assert near(corner(image, "top left"), RED) and near(corner(image, "bottom left"), BLUE)
        assert get_image(client, "/deep.jpg?rotate=90&format=png").size == (96, 200)
        error = refusal(client, "/deep.jpg?size=100x100&engine=cjpeg", 400)
    assert error["parameter"] == "engine" and "12-bit JPEG" in error["message"]


def test_avif_source(client, media_root):
    media_factory.save(media_factory.photo(160, 80), media_root / "pic.avif", quality=90)
    image = get_image(client, "/pic.avif?size=80x80&format=png")
    assert image.size == (80, 40) and near(corner(image, "top left"), RED, 50)


@pytest.mark.parametrize(
    "maker",
    [
        lambda root: media_factory.tiff(root / "bomb.tif", [media_factory.quadrant_array(12, 6)],
                                        declared=(30000, 30000)),
        lambda root: media_factory.tiff(root / "bomb.tif", [media_factory.quadrant_array(12, 6)],
                                        declared=(10000, 10000)),
        lambda root: media_factory.heic(root / "bomb.heic", media_factory.photo(64, 64), declared=(30000, 30000)),
        lambda root: media_factory.heic(root / "bomb.heic", media_factory.photo(64, 64), declared=(10000, 10000)),
    ],
)
def test_tiff_and_heic_bombs_are_refused_from_the_header(client, media_root, monkeypatch, tool_children, maker):
    from PIL import ImageFile

    path = maker(media_root)

    def refuse(*args, **kwargs):
        raise AssertionError("decoded a bomb")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    with tool_children():
        error = refusal(client, f"/{path.name}?size=100x100", 413)
    assert error["error"] == "source_too_large" and error["path"] == path.name


def test_a_format_read_but_not_served_is_named(client, media_root):
    media_factory.save(media_factory.photo(20, 20), media_root / "old.bmp", "BMP")
    error = refusal(client, "/old.bmp?size=10x10", 415)
    assert error["format"] == "BMP" and "BMP" in error["message"]


def info(client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json" and response["ETag"]
    return json.loads(response.content)


def test_info_describes_images_without_decoding(client, media_root, tiffs, monkeypatch):
    from PIL import ImageFile

    media_factory.jpeg_with_orientation(media_root / "o6.jpg", 6)
    media_factory.palette_png_with_alpha(media_root / "pal.png")
    media_factory.adobe_rgb_jpeg(media_root / "icc.jpg")
    media_factory.jpeg12(media_root / "deep.jpg", media_factory.photo(64, 32))
    media_factory.png_pixel_bomb(media_root / "huge.png", 16384, 16384)

    def refuse(*args, **kwargs):
        raise AssertionError("decoded for info=1")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    jpeg = info(client, "/o6.jpg?info=1")
    assert (jpeg["format"], jpeg["width"], jpeg["height"], jpeg["orientation"]) == ("jpeg", 200, 400, 6)
    assert jpeg["has_alpha"] is False and jpeg["animated"] is False and jpeg["bit_depth"] == 8
    assert info(client, "/pal.png?info=1")["has_alpha"] is True
    assert info(client, "/icc.jpg?info=1")["colour_profile"]
    assert info(client, "/icc.jpg?info=1&sig=ignored-when-off")["colour_profile"]
    deep = info(client, "/deep.jpg?info=1")
    assert (deep["format"], deep["bit_depth"], deep["width"]) == ("jpeg", 12, 64)
    pages = info(client, "/pages.tif?info=1")
    assert (pages["format"], pages["frames"], pages["animated"], pages["content_type"]) == ("tiff", 2, True,
                                                                                           "image/tiff")
    assert info(client, "/rgb16.tif?info=1")["bit_depth"] == 16
    assert info(client, "/huge.png?info=1")["width"] == 16384  # over the pixel limit: the header is read, no pixels


def test_info_of_a_clip_and_its_refusals(client, media_root):
    media_factory.clip(media_root / "clip.mp4", seconds=1.0)
    clip = info(client, "/clip.mp4?info=1")
    assert clip["kind"] == "video" and abs(clip["duration"] - 1.0) < 0.1
    assert (clip["width"], clip["height"], clip["video_codec"], clip["audio_codec"]) == (320, 180, "h264", "aac")
    assert {"type": "audio", "codec": "aac"} in clip["streams"]
    response = client.get("/clip.mp4?info=1", HTTP_IF_NONE_MATCH=client.get("/clip.mp4?info=1")["ETag"])
    assert response.status_code == 304
    assert json_error(client.get("/clip.mp4?info=1&format=webm"))["parameter"] == "format"
    assert refusal(client, "/clip.mp4?info=2", 400)["parameter"] == "info"
    assert refusal(client, "/clip.mp4?frame=0.5&rotate=90", 400)["parameter"] == "rotate"
