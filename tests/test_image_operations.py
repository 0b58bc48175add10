"""The image operations of issue 16, on generated images whose right answer is known by pixel."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageStat

from tests import media_factory
from tests.answers import body, corner, near, refusal
from tests.test_images import BLUE, GREEN, RED, YELLOW, get_image

pytestmark = pytest.mark.django_db

GREY = (128, 128, 128)
ENGINES = ["pillow", "convert", "cjpeg"]


def mean(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> tuple[int, ...]:
    part = image.convert("RGB").crop(box) if box else image.convert("RGB")
    return tuple(round(value) for value in ImageStat.Stat(part).mean)


@pytest.fixture
def strips(media_root):
    """900x300 (and 300x900) grey with a red block at the start, green in the middle, blue at the end."""
    wide = Image.new("RGB", (900, 300), GREY)
    draw = ImageDraw.Draw(wide)
    draw.rectangle([0, 0, 299, 299], fill=RED)
    draw.rectangle([300, 0, 599, 299], fill=GREEN)
    draw.rectangle([600, 0, 899, 299], fill=BLUE)
    media_factory.save(wide, media_root / "wide.png")
    media_factory.save(wide.transpose(Image.Transpose.TRANSPOSE), media_root / "tall.png")
    return media_root


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("flip", "red_at"), [("h", "top right"), ("v", "bottom left"), ("hv", "bottom right")]
)
def test_flip_moves_the_marked_corner(client, photos, engine, flip, red_at):
    image = get_image(client, f"/hd.jpg?size=320x180&flip={flip}&engine={engine}")
    assert image.size == (320, 180)
    assert near(corner(image, red_at), RED)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("rotate", "size", "red_at"), [
    (90, (180, 320), "top right"), (180, (320, 180), "bottom right"), (270, (180, 320), "bottom left"),
])
def test_rotate_swaps_dimensions_after_exif(client, media_root, engine, rotate, size, red_at):
    # stored 400x200 with EXIF orientation 6: shown 200x400, red top right; then turned further
    media_factory.jpeg_with_orientation(media_root / "o6.jpg", 6)
    shown = get_image(client, f"/o6.jpg?size=400x400&engine={engine}")
    assert shown.size == (200, 400) and near(corner(shown, "top right"), RED)
    media_factory.save(media_factory.photo(320, 180), media_root / "card.jpg", quality=95)
    image = get_image(client, f"/card.jpg?rotate={rotate}&engine={engine}")
    assert image.size == size
    assert near(corner(image, red_at), RED)
    turned = get_image(client, f"/o6.jpg?size=400x400&rotate=90&engine={engine}")
    assert turned.size == (400, 200) and near(corner(turned, "bottom right"), RED)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("gravity", "colour"), [
    ("west", RED), ("northwest", RED), ("southwest", RED), ("center", GREEN), ("north", GREEN),
    ("south", GREEN), ("east", BLUE), ("northeast", BLUE), ("southeast", BLUE),
])
def test_gravity_keeps_the_block_at_each_compass_point(client, strips, engine, gravity, colour):
    fmt = "&format=jpeg" if engine == "cjpeg" else ""
    if engine == "cjpeg":
        media_factory.save(Image.open(strips / "wide.png"), strips / "wide.jpg", quality=95)
        media_factory.save(Image.open(strips / "tall.png"), strips / "tall.jpg", quality=95)
    source = "wide.jpg" if engine == "cjpeg" else "wide.png"
    wide = get_image(client, f"/{source}?size=100x100&fit=cover&gravity={gravity}&engine={engine}{fmt}")
    assert wide.size == (100, 100) and near(mean(wide), colour, 12), (gravity, mean(wide))
    # on the tall source north and south pick the ends, east and west the middle
    vertical = {"north": RED, "northeast": RED, "northwest": RED, "south": BLUE, "southeast": BLUE,
                "southwest": BLUE}.get(gravity, GREEN)
    tall = get_image(client, f"/{source.replace('wide', 'tall')}?size=100x100&fit=cover&gravity={gravity}"
                             f"&engine={engine}{fmt}")
    assert near(mean(tall), vertical, 12), (gravity, mean(tall))


@pytest.mark.parametrize("engine", ENGINES)
def test_pad_gravity_places_the_picture_on_the_canvas(client, photos, engine):
    image = get_image(client, f"/small.jpg?size=200x300&fit=pad&gravity=north&bg=000000&engine={engine}").convert("RGB")
    assert image.size == (200, 300)
    assert near(image.getpixel((20, 20)), RED) and near(image.getpixel((100, 250)), (0, 0, 0))
    south = get_image(client, f"/small.jpg?size=200x300&fit=pad&gravity=south&bg=000000&engine={engine}")
    south = south.convert("RGB")
    assert near(south.getpixel((100, 40)), (0, 0, 0)) and near(south.getpixel((180, 290)), YELLOW)


def detailed_offcentre(media_root, name: str = "detail.png") -> str:
    """A flat grey 900x300 picture with one noisy, high-detail object at x=650..850."""
    image = Image.new("RGB", (900, 300), GREY)
    noise = np.random.default_rng(7).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    image.paste(Image.fromarray(noise), (650, 50))
    media_factory.save(image, media_root / name)
    return name


def detail(image: Image.Image) -> float:
    return ImageStat.Stat(image.convert("L").filter(ImageFilter.FIND_EDGES)).mean[0]


def test_smart_gravity_keeps_the_detailed_object(client, media_root):
    name = detailed_offcentre(media_root)
    centre = get_image(client, f"/{name}?size=200x200&fit=cover")
    smart = get_image(client, f"/{name}?size=200x200&fit=cover&gravity=smart")
    assert smart.size == (200, 200)
    assert detail(centre) < 5 < detail(smart)
    # the whole object is inside: its flat surroundings show on neither side at mid-height
    assert detail(smart.crop((60, 60, 140, 140))) > 30
    # a flat picture crops as the centre does
    media_factory.save(Image.new("RGB", (600, 200), GREY), media_root / "flat.png")
    assert get_image(client, "/flat.png?size=100x100&fit=cover&gravity=smart").size == (100, 100)


def test_focus_point_stays_inside_the_crop(client, media_root):
    image = Image.new("RGB", (900, 300), GREY)
    ImageDraw.Draw(image).ellipse([800, 140, 820, 160], fill=RED)
    media_factory.save(image, media_root / "dot.png")
    result = get_image(client, "/dot.png?size=150x150&fit=cover&gravity=fp:0.9,0.5")
    reds = np.all(np.abs(np.asarray(result.convert("RGB"), dtype=int) - RED) < 60, axis=2)
    assert reds.sum() > 20
    assert get_image(client, "/dot.png?size=150x150&fit=cover").getpixel((75, 75))[:3] == GREY


@pytest.mark.parametrize("engine", ENGINES)
def test_crop_in_pixels_and_fractions(client, photos, engine):
    top_left = get_image(client, f"/hd.jpg?crop=0,0,960,540&size=200x200&engine={engine}")
    assert top_left.size == (200, 112) and near(mean(top_left), RED, 12)
    bottom_right = get_image(client, f"/hd.jpg?crop=0.5,0.5,0.5,0.5&engine={engine}")
    assert bottom_right.size == (960, 540) and near(mean(bottom_right), YELLOW, 12)
    # crop then cover: the box is cut from the region, not the whole source
    band = get_image(client, f"/hd.jpg?crop=0,0,960,1080&size=100x50&fit=cover&gravity=south&engine={engine}")
    assert band.size == (100, 50) and near(mean(band), BLUE, 12)


def test_trim_removes_a_known_border(client, media_root):
    image = Image.new("RGB", (300, 200), (255, 255, 255))
    ImageDraw.Draw(image).rectangle([40, 30, 239, 129], fill=RED)  # 200x100 of content
    media_factory.save(image, media_root / "bordered.jpg", quality=90)
    trimmed = get_image(client, "/bordered.jpg?trim=1")
    assert abs(trimmed.width - 200) <= 2 and abs(trimmed.height - 100) <= 2
    assert near(mean(trimmed), RED, 20)
    assert get_image(client, "/bordered.jpg?trim=1&size=100x").size == (100, 50)
    # a picture that is all border is kept whole
    media_factory.save(Image.new("RGB", (50, 40), GREY), media_root / "plain.png")
    assert get_image(client, "/plain.png?trim=1").size == (50, 40)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_max_bytes_fits_the_budget_or_says_422(client, media_root, fmt):
    noise = np.random.default_rng(3).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    media_factory.save(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1)), media_root / "noisy.png")
    free = body(client.get(f"/noisy.png?size=400x300&format={fmt}&quality=95"))
    budget = len(free) // 3
    response = client.get(f"/noisy.png?size=400x300&format={fmt}&quality=95&max_bytes={budget}")
    data = body(response)
    assert response.status_code == 200 and len(data) <= budget < len(free)
    assert Image.open(io.BytesIO(data)).size == (400, 300)
    error = refusal(client, f"/noisy.png?size=400x300&format={fmt}&max_bytes=256", 422)
    assert error["parameter"] == "max_bytes" and error["smallest_bytes"] > 256


def test_dpr_gives_twice_the_pixels_and_says_so(client, photos):
    response = client.get("/hd.jpg?size=150x100&fit=cover&dpr=2")
    assert response["Content-DPR"] == "2"
    assert media_factory.decode(body(response)).size == (300, 200)
    assert get_image(client, "/hd.jpg?size=150x&dpr=1.5").size == (225, 127)
    assert "Content-DPR" not in client.get("/hd.jpg?size=150x100")


@pytest.mark.parametrize("engine", ["pillow", "convert"])
def test_blur_and_sharpen_change_edge_strength(client, photos, engine):
    plain = get_image(client, f"/hd.jpg?size=320x180&engine={engine}&format=png")
    blurred = get_image(client, f"/hd.jpg?size=320x180&blur=4&engine={engine}&format=png")
    sharpened = get_image(client, f"/hd.jpg?size=320x180&sharpen=2&engine={engine}&format=png")
    assert detail(blurred) < detail(plain) < detail(sharpened)
    assert near(corner(blurred, "top left"), RED)


@pytest.mark.parametrize(
    ("query", "status", "parameter"),
    [
        ("size=100x100&gravity=north", 400, "gravity"),
        ("size=100x100&fit=pad&gravity=smart", 400, "gravity"),
        ("size=100x100&fit=cover&gravity=fp:1.5,0", 400, "gravity"),
        ("size=100x100&fit=cover&gravity=up", 400, "gravity"),
        ("crop=0,0,5000,10", 422, "crop"),
        ("crop=0.5,0,0.6,1", 400, "crop"),
        ("crop=1,2,3", 400, "crop"),
        ("crop=0,0,0,10", 400, "crop"),
        ("size=3000x3000&dpr=2", 400, "dpr"),
        ("size=100x100&dpr=5", 400, "dpr"),
        ("size=100x100&dpr=0.5", 400, "dpr"),
        ("blur=0", 400, "blur"),
        ("blur=100", 400, "blur"),
        ("sharpen=11", 400, "sharpen"),
        ("rotate=45", 400, "rotate"),
        ("flip=x", 400, "flip"),
        ("trim=2", 400, "trim"),
        ("max_bytes=10", 400, "max_bytes"),
        ("format=png&max_bytes=10000", 400, "max_bytes"),
        ("info=1&size=10x10", 400, "size"),
        ("size=100x100&fit=cover&gravity=smart&engine=convert", 400, "engine"),
        ("trim=1&engine=cjpeg", 400, "engine"),
        ("max_bytes=5000&engine=convert", 400, "engine"),
        ("blur=2&engine=cjpeg", 400, "engine"),
    ],
)
def test_bad_operations_are_refused_with_json(client, photos, tool_children, query, status, parameter):
    with tool_children():
        assert refusal(client, f"/hd.jpg?{query}", status)["parameter"] == parameter
    assert sorted(os.listdir(photos["hd"].parent)) == ["big.jpg", "hd.jpg", "pic.png", "small.jpg"]


def test_a_png_source_defaults_to_png_so_max_bytes_needs_a_format(client, photos):
    assert refusal(client, "/pic.png?max_bytes=5000", 400)["parameter"] == "max_bytes"
    assert client.get("/pic.png?max_bytes=50000&format=webp").status_code == 200


def test_new_parameters_leave_old_canonical_forms_alone():
    from transforms.spec import TransformSpec, parse_query

    assert TransformSpec(width=300, height=200, fit="cover").canonical() == "width=300&height=200&fit=cover"
    spec = parse_query({"size": ["300x200"], "gravity": ["fp:0.50,0.25"], "dpr": ["2.0"], "crop": ["0.1,0,0.5,1"]})
    assert spec.canonical() == "width=300&height=200&gravity=fp:0.5,0.25&dpr=2&crop=0.1,0,0.5,1"
    assert parse_query({"gravity": ["ce"], "rotate": ["0"]}).canonical() == ""
