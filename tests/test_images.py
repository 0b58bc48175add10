"""Image transforms through Django's test client, outputs decoded with Pillow."""

from __future__ import annotations

import os
import shutil

import pytest
from PIL import Image

from tests import media_factory
from tests.answers import body, corner, json_error, near, refusal
from tests.media_factory import decode
from transforms.signing import media_url

pytestmark = pytest.mark.django_db


def get_image(client, url: str, **headers) -> Image.Image:
    response = client.get(url, **headers)
    assert response.status_code == 200, response.content if not response.streaming else response.status_code
    return decode(body(response))


RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)

# query -> size of the result, for the 1920x1080 "hd.jpg" source (shared with tests/test_engines.py)
SIZES_AND_FITS = [
    ("size=300x200", (300, 169)),
    ("size=300x200&fit=cover", (300, 200)),
    ("size=300x200&fit=fill", (300, 200)),
    ("size=300x200&fit=pad", (300, 200)),
    ("size=300x", (300, 169)),
    ("size=x120", (213, 120)),
]


@pytest.mark.parametrize(
    ("query", "size"),
    SIZES_AND_FITS,
)
def test_sizes_and_fits(client, photos, query, size):
    image = get_image(client, f"/hd.jpg?{query}")
    assert image.size == size
    assert image.format == "JPEG"
    assert near(corner(image, "top left"), RED)
    assert near(corner(image, "bottom right"), YELLOW)


def test_pad_uses_the_background_colour(client, photos):
    image = get_image(client, "/hd.jpg?size=300x300&fit=pad&bg=00ff00").convert("RGB")
    assert image.size == (300, 300)
    assert near(image.getpixel((150, 2)), GREEN)
    assert near(image.getpixel((150, 297)), GREEN)


def test_cover_crop_of_a_large_source(client, photos):
    image = get_image(client, "/big.jpg?size=300x300&fit=cover")
    assert image.size == (300, 300)
    # the centre crop of a 4:3 source keeps all four quadrants
    for where, colour in [("top left", RED), ("top right", GREEN), ("bottom left", BLUE), ("bottom right", YELLOW)]:
        assert near(corner(image, where), colour)


def test_no_upscale_by_default_and_upscale_on_request(client, photos):
    assert get_image(client, "/small.jpg?size=400x400").size == (200, 100)
    assert get_image(client, "/small.jpg?size=400x400&upscale=1").size == (400, 200)


@pytest.mark.parametrize(("fmt", "pillow_format"), [("png", "PNG"), ("webp", "WEBP"), ("gif", "GIF"), ("avif", "AVIF")])
def test_output_formats(client, photos, fmt, pillow_format):
    response = client.get(f"/hd.jpg?size=160x90&format={fmt}")
    assert response["Content-Type"] == f"image/{fmt}"
    image = decode(body(response))
    assert image.format == pillow_format
    assert image.size == (160, 90)


def test_quality_changes_the_bytes(client, photos):
    low = body(client.get("/hd.jpg?size=600x400&quality=10"))
    high = body(client.get("/hd.jpg?size=600x400&quality=95"))
    assert len(low) < len(high)


def test_format_auto_follows_accept_and_varies(client, photos):
    response = client.get("/hd.jpg?size=100x100&format=auto", HTTP_ACCEPT="image/avif,image/webp,*/*")
    assert response["Content-Type"] == "image/avif"
    assert response["Vary"] == "Accept"
    body(response)
    response = client.get("/hd.jpg?size=100x100&format=auto", HTTP_ACCEPT="image/webp,*/*")
    assert response["Content-Type"] == "image/webp"
    webp_etag = response["ETag"]
    body(response)
    response = client.get("/hd.jpg?size=100x100&format=auto", HTTP_ACCEPT="*/*")
    assert response["Content-Type"] == "image/jpeg"
    assert response["ETag"] != webp_etag
    body(response)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_metadata_stripped(client, media_root, orientation):
    media_factory.jpeg_with_orientation(media_root / f"o{orientation}.jpg", orientation)
    image = get_image(client, f"/o{orientation}.jpg?size=100x100")
    upright = (100, 50) if orientation <= 4 else (50, 100)
    assert image.size == upright
    assert not image.getexif()
    # the stored top-left (red) quadrant lands where the orientation puts it
    red_corner = {1: "top left", 2: "top right", 3: "bottom right", 4: "bottom left",
                  5: "top left", 6: "top right", 7: "bottom right", 8: "bottom left"}[orientation]
    assert near(corner(image, red_corner), RED), (orientation, corner(image, red_corner))


def test_cmyk_16bit_palette_alpha_and_icc_sources(client, media_root):
    media_factory.cmyk_jpeg(media_root / "cmyk.jpg")
    media_factory.png_16bit_grey(media_root / "deep.png")
    media_factory.palette_png_with_alpha(media_root / "pal.png")
    media_factory.adobe_rgb_jpeg(media_root / "icc.jpg")

    cmyk = get_image(client, "/cmyk.jpg?size=100x100")
    assert cmyk.mode == "RGB" and near(corner(cmyk, "top left"), RED, 60)

    deep = get_image(client, "/deep.png?size=32x32")
    assert deep.mode == "L" and deep.getextrema()[1] > 100  # scaled, not clipped to white or black

    pal = get_image(client, "/pal.png?size=60x60")
    assert pal.mode == "RGBA"
    assert pal.getpixel((5, 5))[3] == 0 and pal.getpixel((55, 5))[3] == 255
    flat = get_image(client, "/pal.png?size=60x60&format=jpeg&bg=0000ff")
    assert near(flat.getpixel((5, 5)), BLUE)

    icc = get_image(client, "/icc.jpg?size=50x50")
    assert "icc_profile" not in icc.info


def test_original_without_query(client, photos):
    response = client.get("/pic.png")
    data = body(response)
    assert data == photos["png"].read_bytes()
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    etag = response["ETag"]
    assert client.get("/pic.png", HTTP_IF_NONE_MATCH=etag).status_code == 304
    last_modified = response["Last-Modified"]
    assert client.get("/pic.png", HTTP_IF_MODIFIED_SINCE=last_modified).status_code == 304
    assert client.get("/pic.png", HTTP_IF_MODIFIED_SINCE="Mon, 01 Jan 1990 00:00:00 GMT").status_code == 200
    assert client.get("/pic.png", HTTP_IF_MODIFIED_SINCE="garbage").status_code == 200


def test_etag_304_before_any_decoding(client, photos, monkeypatch):
    response = client.get("/hd.jpg?size=300x200")
    etag = response["ETag"]
    body(response)
    assert response["Cache-Control"] == "public, max-age=86400"

    def refuse(*args, **kwargs):
        raise AssertionError("decoded for a conditional request")

    monkeypatch.setattr("transforms.planning.describe", refuse)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", refuse)
    not_modified = client.get("/hd.jpg?size=300x200", HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304
    assert not_modified["ETag"] == etag
    # a changed source changes the ETag
    monkeypatch.undo()
    os.utime(photos["hd"], ns=(0, 1_000_000_000))
    changed = client.get("/hd.jpg?size=300x200", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    body(changed)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "gif"])
def test_the_probe_decodes_nothing_and_the_file_is_opened_once(client, media_root, monkeypatch, fmt):
    """Limits are checked from the header alone (a PNG's probe used to decode it whole, outside
    the work slot), and one Image.open serves the dispatch, the probe and the Pillow engine."""
    from PIL import ImageFile

    from transforms.sources import probe_image, resolve

    media_factory.photo(320, 240).save(media_root / f"probe.{fmt}", fmt.upper())

    def refuse(*args, **kwargs):
        raise AssertionError("decoded while probing")

    with monkeypatch.context() as patched:
        patched.setattr(ImageFile.ImageFile, "load", refuse)
        info = probe_image(resolve(f"probe.{fmt}"))
    assert (info.format, info.width, info.height) == (fmt, 320, 240)

    opens, real_open = [], Image.open

    def counting_open(*args, **kwargs):
        opens.append(args[0])
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    response = client.get(f"/probe.{fmt}?size=160x120&format=png")
    assert response.status_code == 200
    assert decode(body(response)).size == (160, 120)
    assert [str(opened) for opened in opens].count(str(media_root / f"probe.{fmt}")) == 1


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("size=0x0", "size"),
        ("size=-1x5", "size"),
        ("size=99999x99999", "size"),
        ("size=abc", "size"),
        ("quality=101", "quality"),
        ("fit=nope", "fit"),
        ("size=10x10&size=20x20", "size"),
        ("bogus=1", "bogus"),
        ("frame=1", "frame"),
        ("engine=ffmpeg", "engine"),
    ],
)
def test_bad_parameters_are_400_with_json(client, photos, query, parameter):
    response = client.get(f"/hd.jpg?{query}")
    assert response.status_code == 400
    assert json_error(response)["parameter"] == parameter


@pytest.mark.parametrize(
    "path",
    ["/../secret.jpg", "/%2e%2e/secret.jpg", "/a/../../secret.jpg", "//etc/passwd", "/.hidden.jpg", "/missing.jpg",
     "/sub/", "/link.jpg", "/linkdir/secret.jpg"],
)
def test_paths_outside_the_media_root_are_404(client, media_root, tmp_path, path):
    secret = media_factory.save(media_factory.photo(10, 10), tmp_path / "secret.jpg")
    (media_root / "sub").mkdir()
    media_factory.save(media_factory.photo(10, 10), media_root / ".hidden.jpg")
    os.symlink(secret, media_root / "link.jpg")
    os.symlink(tmp_path, media_root / "linkdir")
    for query in ("", "?size=5x5"):
        response = client.get(path + query)
        assert response.status_code == 404, (path, query)
        assert json_error(response)["error"] == "not_found"


def test_a_fifo_in_the_root_is_404_at_once(client, media_root):
    os.mkfifo(media_root / "pipe.jpg")  # opening it for reading would block until a writer came
    for query in ("", "?size=5x5"):
        response = client.get("/pipe.jpg" + query)
        assert response.status_code == 404
        assert json_error(response)["error"] == "not_found"


@pytest.mark.parametrize("proc", ["proc", "no proc"])
def test_resolve_follows_symlinks_like_realpath(media_root, tmp_path, settings, monkeypatch, proc):
    """A symlinked MEDIA_ROOT and symlinks inside it resolve as os.path.realpath would, with or without /proc."""
    from transforms import sources

    if proc == "no proc":
        real_readlink = os.readlink

        def no_proc(path, *args, **kwargs):
            if str(path).startswith("/proc/"):
                raise FileNotFoundError(path)
            return real_readlink(path, *args, **kwargs)  # os.path.realpath reads symlinks with it too

        monkeypatch.setattr(sources.os, "readlink", no_proc)
    media_factory.save(media_factory.photo(10, 10), media_root / "real.jpg")
    (media_root / "deep").mkdir()
    os.symlink("../real.jpg", media_root / "deep" / "alias.jpg")
    os.symlink(media_root, tmp_path / "root-link")
    settings.MEDIA_ROOT = str(tmp_path / "root-link")

    found = sources.resolve("deep/alias.jpg")
    assert str(found.path) == os.path.realpath(media_root / "real.jpg")
    assert (found.size, found.inode) == (os.stat(media_root / "real.jpg").st_size,
                                         os.stat(media_root / "real.jpg").st_ino)
    with pytest.raises(sources.SourceNotFound):
        sources.resolve("deep")  # a folder is not a source


def test_symlink_inside_the_root_is_served(client, photos, media_root):
    os.symlink(photos["png"], media_root / "alias.png")
    assert get_image(client, "/alias.png?size=64x64").size == (64, 48)


@pytest.mark.parametrize(
    ("maker", "status"),
    [
        (lambda root: (root / "empty.jpg").write_bytes(b""), 422),
        (lambda root: (root / "text.jpg").write_bytes(b"this is not an image\n"), 415),
        (lambda root: (root / "one.jpg").write_bytes(b"\xff"), 415),
        (lambda root: (root / "zip.png").write_bytes(b"PK\x05\x06" + b"\0" * 18), 415),
        (lambda root: media_factory.truncated(
            media_factory.save(media_factory.photo(800, 600), root / "whole.jpg", quality=90), root / "cut.jpg", 0.3),
         422),
        (lambda root: media_factory.truncated(
            media_factory.save(media_factory.photo(800, 600), root / "whole.png"), root / "cut.png", 0.5), 422),
        (lambda root: media_factory.png_pixel_bomb(root / "bomb.png"), 413),
        (lambda root: media_factory.png_pixel_bomb(root / "huge.png", 16384, 16384), 413),
    ],
)
def test_broken_sources_give_a_clear_4xx(client, media_root, maker, status, tool_children):
    maker(media_root)
    name = sorted(p.name for p in media_root.iterdir() if not p.name.startswith("whole"))[0]
    with tool_children():
        response = client.get(f"/{name}?size=100x100")
        assert response.status_code == status, (name, response.content)
        assert json_error(response)["path"] == name
    assert sorted(os.listdir(media_root)) == sorted(p.name for p in media_root.iterdir())


def test_pixel_limit_follows_settings(client, photos, settings):
    settings.TRANSFORMS_MAX_PIXELS = 1000 * 1000
    assert refusal(client, "/hd.jpg?size=10x10", 413)["limit_pixels"] == 1_000_000


def test_saturated_worker_answers_503_with_retry_after(client, photos, work_slots):
    slots = work_slots(1)
    held = slots.acquire()
    response = client.get("/hd.jpg?size=10x10")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    held.release()
    assert client.get("/hd.jpg?size=10x10").status_code == 200
    assert slots.used == 0


def test_signing_required(client, photos, settings):
    settings.TRANSFORMS_SIGNING = "required"
    assert client.get("/hd.jpg?size=100x100").status_code == 403
    assert json_error(client.get("/hd.jpg?size=100x100&sig=nope"))["error"] == "bad_signature"
    url = media_url("hd.jpg", size="100x100", fit="cover")
    assert get_image(client, url).size == (100, 100)
    tampered = url.replace("100x100", "101x101")
    assert client.get(tampered).status_code == 403
    # reordering the parameters keeps the signature valid
    name, query = url.split("?")
    params = query.split("&")
    assert get_image(client, name + "?" + "&".join(reversed(params))).size == (100, 100)
    # originals are plain files and need no signature
    assert client.get("/hd.jpg").status_code == 200


def test_template_tag_builds_signed_urls(photos, settings):
    from django.template import Context, Template

    html = Template('{% load transforms %}{% media_url "hd.jpg" size="300x200" %}').render(Context())
    assert html.startswith("/hd.jpg?size=300x200&amp;sig=")


def test_front_page_lists_media_with_thumbnails(client, photos):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("hd.jpg", "big.jpg", "pic.png"):
        assert f'alt="{name}"' in html
    assert "size=240x160" in html


@pytest.fixture
def odd(shared_media):
    return shared_media / "odd"


ODD_EXPECTED = {
    "pillow__truncated_jpeg.jpg": 422,
    "pillow__truncated_image.png": 422,
    "pillow__broken.png": 415,
    "pillow__png_decompression_dos.png": 422,
    "pillow__zero_width.gif": 415,
    "thumbor__16384x16384.png": 413,
    "thumbor__image_invalid.jpg": 415,
    "thumbor__BlueSquare_truncated.jpg": 422,
    "small__zip.zip": 415,
}


def test_odd_corpus(client, media_root, odd, tool_children):
    """Every odd file either transforms to a decodable image or gets a clear 4xx."""
    for source in sorted(odd.iterdir()):
        shutil.copyfile(source, media_root / source.name)
    with tool_children():
        for source in sorted(odd.iterdir()):
            if source.suffix.lower() in (".mp4", ".mov", ".webm"):
                continue
            response = client.get(f"/{source.name}?size=64x64")
            expected = ODD_EXPECTED.get(source.name, 200)
            assert response.status_code == expected, (source.name, response.status_code)
            if expected == 200:
                image = decode(body(response))
                assert max(image.size) <= 64
            else:
                assert json_error(response)["message"]
