"""``{% picture %}``: the markup parsed, every URL in it fetched, and a real browser's choice."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import pytest
from django.template import Context, Template
from PIL import Image

from tests import media_factory
from tests.answers import body

# Closing a test-client response runs Django's request_finished, which looks at the test database's
# connection: those tests use the test database (not the Chromium one: Playwright runs an event loop).
with_db = pytest.mark.django_db

class Elements(HTMLParser):
    """Every start tag as (name, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def parse(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = Elements()
    parser.feed(html)
    return parser.found


def render(text: str) -> str:
    return Template("{% load transforms %}" + text).render(Context())


def candidates(srcset: str) -> list[tuple[str, int]]:
    pairs = [part.strip().rsplit(" ", 1) for part in srcset.split(",")]
    return [(url, int(width.rstrip("w"))) for url, width in pairs]


def fetched(client, url: str, content_type: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200, (url, response.content[:200] if not response.streaming else "")
    assert response["Content-Type"] == content_type
    return media_factory.decode(body(response))


@pytest.mark.parametrize("signing", ["off", "required"])
@with_db
def test_every_url_of_the_picture_gives_its_width_and_type(client, photos, settings, signing):
    settings.TRANSFORMS_SIGNING = signing
    html = render('{% picture "hd.jpg" widths="300,600,3000" sizes="(min-width: 800px) 50vw, 100vw" '
                  'ratio="3:2" gravity="north" alt="A <card>" %}')
    elements = parse(html)
    assert [tag for tag, _ in elements] == ["picture", "source", "source", "img"]
    (_, avif), (_, webp), (_, img) = elements[1:]
    assert (avif["type"], webp["type"]) == ("image/avif", "image/webp")
    assert img["alt"] == "A <card>" and img["loading"] == "lazy" and img["decoding"] == "async"
    assert img["sizes"] == avif["sizes"] == "(min-width: 800px) 50vw, 100vw"
    # 3000 is wider than a 3:2 crop of the 1920x1080 source (1620x1080): it is capped to that
    for attributes, content_type in ((avif, "image/avif"), (webp, "image/webp"), (img, "image/jpeg")):
        pairs = candidates(attributes["srcset"])
        assert [width for _, width in pairs] == [300, 600, 1620]
        for url, width in pairs:
            image = fetched(client, url, content_type)
            assert image.size == (width, round(width / 1.5))
    # the fallback src is one of the candidates, and its size is the intrinsic one
    fallback = fetched(client, img["src"], "image/jpeg")
    assert fallback.size == (int(img["width"]), int(img["height"])) == (600, 400)
    assert fallback.getpixel((100, 10))[:3] > (200, 0, 0) and fallback.getpixel((500, 390))[2] < 60  # red, yellow
    if signing == "required":
        assert "sig=" in img["src"] and client.get(img["src"].replace("600x400", "601x400")).status_code == 403


@with_db
def test_defaults_never_exceed_the_source_and_alpha_falls_back_to_png(client, media_root):
    media_factory.palette_png_with_alpha(media_root / "logo.png")  # 120x60 with transparency
    html = render('{% picture "logo.png" alt="logo" css_class="brand" %}')
    elements = dict(parse(html))
    img = elements["img"]
    assert img["class"] == "brand" and (img["width"], img["height"]) == ("120", "60")
    assert [width for _, width in candidates(img["srcset"])] == [120]
    assert fetched(client, img["src"], "image/png").mode == "RGBA"


@with_db
def test_placeholder_is_a_tiny_inline_preview_of_the_same_crop(client, photos):
    html = render('{% picture "hd.jpg" widths="300" ratio="1:1" placeholder="blur" %}')
    style = dict(parse(html))["img"]["style"]
    encoded = style.split("base64,", 1)[1].split(")", 1)[0]
    preview = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert preview.format == "WEBP" and preview.size == (24, 24)
    assert len(encoded) < 1000


@with_db
def test_a_clip_gets_frame_grabs_and_a_poster_url(client, media_root):
    media_factory.clip(media_root / "clip.mp4", seconds=1.0, audio=False)
    elements = parse(render('{% picture "clip.mp4" widths="160,320" ratio="16:9" formats="avif,webp,jpeg" %}'))
    types = [attributes.get("type") for tag, attributes in elements if tag == "source"]
    assert types == ["image/webp"]  # ffmpeg grabs no AVIF frames: that source is left out
    img = dict(elements)["img"]
    for url, width in candidates(img["srcset"]):
        assert "frame=0.5" in url  # a one-second clip: the middle, not past the end
        assert fetched(client, url, "image/jpeg").size == (width, round(width * 9 / 16))
    poster = render('{% picture_url "clip.mp4" width=1280 %}').replace("&amp;", "&")
    assert fetched(client, poster, "image/jpeg").size == (320, 180)
    negotiated = client.get(poster, HTTP_ACCEPT="image/webp")
    assert negotiated["Content-Type"] == "image/webp"
    body(negotiated)  # closed: its ffmpeg is reaped and its work slot given back


@with_db
def test_a_broken_source_gets_a_plain_img_and_the_page_renders(client, media_root):
    (media_root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    html = render('{% picture "broken.jpg" alt="broken" %}{% picture "missing.jpg" %}')
    assert [tag for tag, _ in parse(html)] == ["img", "img"]


@pytest.mark.parametrize(("scale", "width"), [(1, 240), (2, 480)])
def test_chromium_loads_a_modern_source_at_the_width_sizes_asks_for(gunicorn_factory, browser, tmp_path, scale,
                                                                    width):
    root = tmp_path / "media"
    media_factory.save(media_factory.photo(1200, 800), root / "photo.jpg", quality=90)
    server = gunicorn_factory({"MEDIA_ROOT": str(root), "TRANSFORMS_SIGNING": "required"})
    context = browser.new_context(device_scale_factor=scale)
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("[...document.images].length === 1 && [...document.images].every(i => i.complete)")
        chosen = page.eval_on_selector("img", "i => [i.currentSrc, i.naturalWidth, i.naturalHeight]")
    finally:
        context.close()
    assert "format=avif" in chosen[0] or "format=webp" in chosen[0]
    assert f"size={width}x{width * 2 // 3}" in chosen[0]
    assert chosen[1:] == [240, 160]  # natural size is in CSS pixels: the 2x file is shown at its density
