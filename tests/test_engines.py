"""The tool engines (convert, cjpeg): argv tables, then the same image suite run for real per engine."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from streaming.pipeline import Pipeline, PipelineError
from tests import media_factory
from tests.answers import body, corner, json_error, near
from tests.media_factory import decode
from tests.test_images import BLUE, GREEN, RED, SIZES_AND_FITS, YELLOW, get_image
from transforms.engines import ENGINES, ImageJob
from transforms.engines.cjpeg import CjpegEngine, decode_eighths
from transforms.engines.convert import POLICY_DIR, SRGB_PROFILE, ConvertEngine
from transforms.geometry import plan_for
from transforms.sources import ImageInfo, Source
from transforms.spec import parse_query

pytestmark = pytest.mark.django_db

SRGB = str(SRGB_PROFILE)
TOOL_ENGINES = ["convert", "cjpeg"]
ALL_ENGINES = ["pillow", *TOOL_ENGINES]


def make_job(query: str, size: tuple[int, int], fmt: str = "jpeg", orientation: int = 1, mode: str = "RGB",
             output: str | None = None) -> ImageJob:
    """A job as the view builds it, for a source of ``size`` (upright) without touching a file."""
    spec = parse_query({k: [v] for k, v in (part.split("=") for part in query.split("&"))})
    info = ImageInfo(fmt, size[0], size[1], orientation, mode, 1)
    plan = plan_for(size, spec, 4096)
    return ImageJob(Source(Path("/media/x"), "x", 1, 1), info, plan, output or spec.format or fmt,
                    spec.effective_quality, spec.bg)


# --- argv tables: pure functions, no tools run ------------------------------------------------

FLAT = ["-background", "#ffffff", "-alpha", "remove", "-alpha", "off"]
TAIL_JPEG = ["-strip", "-depth", "8", "-quality", "85", "jpeg:-"]

CONVERT_TABLE = [
    # 1920x1080 -> 300x169 contain: libjpeg hint, one -thumbnail
    ("size=300x200", (1920, 1080), {},
     ["-define", "jpeg:size=300x169", "jpeg:/dev/stdin", "-auto-orient", "-profile", SRGB,
      "-thumbnail", "300x169!", *FLAT, *TAIL_JPEG]),
    # cover: scale the whole source so the crop box becomes 300x200, then crop it
    ("size=300x200&fit=cover", (1920, 1080), {},
     ["-define", "jpeg:size=356x200", "jpeg:/dev/stdin", "-auto-orient", "-profile", SRGB,
      "-thumbnail", "356x200!", "-crop", "300x200+28+0", "+repage", *FLAT, *TAIL_JPEG]),
    # pad on a colour
    ("size=300x300&fit=pad&bg=00ff00", (1920, 1080), {},
     ["-define", "jpeg:size=300x169", "jpeg:/dev/stdin", "-auto-orient", "-profile", SRGB,
      "-thumbnail", "300x169!", "-background", "#00ff00", "-gravity", "center", "-extent", "300x300", "+gravity",
      "-background", "#00ff00", "-alpha", "remove", "-alpha", "off", *TAIL_JPEG]),
    # EXIF 6: the hint is in stored orientation (1080x1920 upright is 1920x1080 stored)
    ("size=100x100", (1080, 1920), {"orientation": 6},
     ["-define", "jpeg:size=100x56", "jpeg:/dev/stdin", "-auto-orient", "-profile", SRGB,
      "-thumbnail", "56x100!", *FLAT, *TAIL_JPEG]),
    # PNG in, WebP out: no JPEG hint, quality applies, alpha kept
    ("size=320x&format=webp&quality=70", (640, 480), {"fmt": "png", "mode": "RGBA"},
     ["png:/dev/stdin", "-auto-orient", "-profile", SRGB, "-thumbnail", "320x240!",
      "-strip", "-depth", "8", "-quality", "70", "webp:-"]),
    # GIF: first frame only; grey PNG: no RGB profile forced on it; PNG output level 6
    ("size=50x50&format=png", (100, 100), {"fmt": "gif", "mode": "L"},
     ["gif:/dev/stdin[0]", "-auto-orient", "-thumbnail", "50x50!",
      "-strip", "-depth", "8", "-define", "png:compression-level=6", "png:-"]),
    # CMYK JPEG: converted to sRGB; no resize when the size is the source's
    ("format=jpeg", (64, 32), {"mode": "CMYK"},
     ["jpeg:/dev/stdin", "-auto-orient", "-colorspace", "sRGB", "-profile", SRGB, *FLAT, *TAIL_JPEG]),
    # upscale: no libjpeg hint (nothing to save), the size grows
    ("size=400x400&upscale=1", (200, 100), {},
     ["jpeg:/dev/stdin", "-auto-orient", "-profile", SRGB, "-thumbnail", "400x200!", *FLAT, *TAIL_JPEG]),
]


@pytest.mark.parametrize(("query", "size", "info", "argv"), CONVERT_TABLE)
def test_convert_commands(query, size, info, argv):
    job = make_job(query, size, **info)
    assert ConvertEngine().commands(job) == [["/usr/bin/convert", *argv]]


CJPEG_TABLE = [
    # 1920x1080 -> 300x169: djpeg 2/8 (480x270) is the largest reduction with enough pixels
    ("size=300x200", (1920, 1080), {},
     [["djpeg", "-strict", "-scale", "2/8"], ["pamscale", "-width", "300", "-height", "169"],
      ["cjpeg", "-quality", "85"]]),
    # cover: the crop box scaled to the 480x270 decode, then the exact size
    ("size=300x200&fit=cover", (1920, 1080), {},
     [["djpeg", "-strict", "-scale", "2/8"],
      ["pamcut", "-left", "38", "-top", "0", "-width", "404", "-height", "270"],
      ["pamscale", "-width", "300", "-height", "200"], ["cjpeg", "-quality", "85"]]),
    # an exact 1/8 needs no resampler at all
    ("size=500x&quality=60", (4000, 3000), {},
     [["djpeg", "-strict", "-scale", "1/8"], ["cjpeg", "-quality", "60"]]),
    # EXIF orientations become a pamflip on the reduced image
    ("size=50x100", (200, 400), {"orientation": 6},
     [["djpeg", "-strict", "-scale", "2/8"], ["pamflip", "-cw"], ["cjpeg", "-quality", "85"]]),
    ("size=50x100", (200, 400), {"orientation": 7},
     [["djpeg", "-strict", "-scale", "2/8"], ["pamflip", "-xform=transpose,leftright,topbottom"],
      ["cjpeg", "-quality", "85"]]),
    ("size=100x50", (400, 200), {"orientation": 2},
     [["djpeg", "-strict", "-scale", "2/8"], ["pamflip", "-leftright"], ["cjpeg", "-quality", "85"]]),
    # pad: white and black are the colours pnmpad knows
    ("size=300x300&fit=pad&bg=000000", (1920, 1080), {},
     [["djpeg", "-strict", "-scale", "2/8"], ["pamscale", "-width", "300", "-height", "169"],
      ["pnmpad", "-black", "-width", "300", "-height", "300", "-halign", "0.5", "-valign", "0.5"],
      ["cjpeg", "-quality", "85"]]),
    # upscale decodes at full size
    ("size=400x400&upscale=1", (200, 100), {},
     [["djpeg", "-strict", "-scale", "8/8"], ["pamscale", "-width", "400", "-height", "200"],
      ["cjpeg", "-quality", "85"]]),
]


@pytest.mark.parametrize(("query", "size", "info", "stages"), CJPEG_TABLE)
def test_cjpeg_commands(query, size, info, stages):
    assert CjpegEngine().commands(make_job(query, size, **info)) == stages


@pytest.mark.parametrize(
    ("query", "size", "eighths"),
    [("size=300x200", (1920, 1080), 2), ("size=240x", (1920, 1080), 1), ("size=241x", (1920, 1080), 2),
     ("size=1000x", (1000, 500), 8), ("size=100x100&fit=cover", (4000, 1000), 1)],
)
def test_cjpeg_picks_the_largest_reduction_that_keeps_enough_pixels(query, size, eighths):
    assert decode_eighths(make_job(query, size)) == eighths


def test_cjpeg_refuses_what_it_cannot_do():
    engine = CjpegEngine()
    assert "does not read png" in engine.refusal(make_job("size=5x5", (10, 10), fmt="png", output="jpeg")).message
    assert "does not write webp" in engine.refusal(make_job("size=5x5", (10, 10), output="webp")).message
    assert "CMYK" in engine.refusal(make_job("size=5x5", (10, 10), mode="CMYK")).message
    assert engine.refusal(make_job("size=5x5", (10, 10), mode="L")) is None
    refused = engine.refusal(make_job("size=300x300&fit=pad&bg=00ff00", (1920, 1080)))
    assert refused.parameter == "bg" and "white or black" in refused.message


def test_engines_are_registered_and_available():
    assert set(ALL_ENGINES) <= set(ENGINES)
    for name in TOOL_ENGINES:
        assert ENGINES[name].check() is None, ENGINES[name].check()
        assert ENGINES[name].version().startswith(f"{name}:")


def test_system_check_names_a_missing_tool(settings):
    from transforms.checks import check_engines

    settings.TRANSFORMS_CJPEG = "/nonexistent/cjpeg"
    settings.TRANSFORMS_CONVERT = "/bin/true"  # present, but not ImageMagick
    messages = {message.obj: message.msg for message in check_engines()}
    assert "/nonexistent/cjpeg not found" in messages["cjpeg"]
    assert "is not ImageMagick" in messages["convert"]
    assert "pillow" not in messages


# --- the ImageMagick policy ------------------------------------------------------------------

def run_convert(*args: str, stdin: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **ConvertEngine().environment()}
    with open(stdin or os.devnull, "rb") as source:
        return subprocess.run(["/usr/bin/convert", *args], env=env, stdin=source, capture_output=True, timeout=30)


def test_policy_is_in_force():
    listed = run_convert("-list", "policy").stdout.decode()
    assert str(POLICY_DIR / "policy.xml") in listed
    assert "{GIF,JPEG,PNG,WEBP}" in listed
    resources = run_convert("-list", "resource").stdout.decode()
    assert "Thread: 1" in resources


MVG = b'push graphic-context\nviewbox 0 0 64 64\nimage over 0,0 0,0 "/etc/passwd"\npop graphic-context\n'


@pytest.mark.parametrize(
    ("reader", "payload"),
    [
        ("mvg:{path}", MVG),
        ("msl:{path}", b'<?xml version="1.0"?><image><read filename="/etc/passwd"/></image>'),
        ("svg:{path}", b'<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>'),
        ("text:{path}", b"hello"),
        ("ephemeral:{path}", b"x"),
        ("@{path}", b"/etc/passwd"),
        ("https://127.0.0.1:9/x.jpg", b""),
    ],
)
def test_policy_refuses_scripts_and_indirect_reads(tmp_path, reader, payload):
    evil = tmp_path / "evil.jpg"
    evil.write_bytes(payload)
    result = run_convert(reader.format(path=evil), "png:-")
    assert result.returncode != 0
    # a denied coder is either refused outright or, for EPHEMERAL, not recognised as a coder at all
    assert b"not allowed by the security policy" in result.stderr or b"unable to open image" in result.stderr
    assert result.stdout == b""
    assert evil.exists()  # ephemeral: would have deleted it


def test_a_script_named_jpg_is_never_run(client, media_root, settings, tool_children):
    (media_root / "evil.jpg").write_bytes(MVG)
    with tool_children():
        response = client.get("/evil.jpg?size=10x10&engine=convert")
    assert response.status_code == 415


# --- settling pipelines ------------------------------------------------------------------------

def test_settling_pipeline_reports_a_failure_that_follows_the_output(tool_children):
    script = "import sys; sys.stdout.write('looks fine'); sys.stdout.flush(); sys.exit(2)"
    import sys

    with tool_children(), Pipeline([[sys.executable, "-c", script]], settle=True) as pipeline:
        with pytest.raises(PipelineError) as caught:
            pipeline.wait_for_output()
    assert caught.value.returncode == 2


def test_settling_pipeline_streams_a_large_output_before_the_tool_ends(tool_children):
    # 4 MiB do not fit in the pipe: the pipeline commits once it is half full
    with tool_children(), Pipeline([["head", "-c", str(4 << 20), "/dev/zero"]], settle=True) as pipeline:
        pipeline.wait_for_output()
        data = b"".join(iter(pipeline.read, b""))
    assert len(data) == 4 << 20


def test_fatal_stderr_fails_a_tool_that_exits_zero(tool_children):
    import re
    import sys

    script = "import sys; sys.stdout.write('x'); sys.stderr.write('warning/jpeg.c: premature end')"
    with tool_children(), Pipeline([[sys.executable, "-c", script]], settle=True,
                                   fatal_stderr=re.compile("warning/jpeg")) as pipeline:
        with pytest.raises(PipelineError, match="damaged input"):
            pipeline.wait_for_output()


# --- the same image suite, for real, once per engine --------------------------------------------

@pytest.fixture(params=ALL_ENGINES)
def engine(request, settings) -> str:
    """Run the test with this engine as TRANSFORMS_DEFAULT_ENGINE (URLs name no engine)."""
    settings.TRANSFORMS_DEFAULT_ENGINE = request.param
    return request.param


def magick_scratch() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "mediasite-magick-*")))


@pytest.fixture
def clean(tool_children, tmp_path, monkeypatch):
    """No child process and no ImageMagick scratch folder outlives the test.

    The test gets its own temp folder, so scratch folders of other processes
    (another suite running on the same machine) are not counted.
    """
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    with tool_children():
        yield
    assert magick_scratch() == set()


@pytest.mark.parametrize(
    ("query", "size"),
    SIZES_AND_FITS,
)
def test_sizes_and_fits(client, photos, engine, clean, query, size):
    image = get_image(client, f"/hd.jpg?{query}")
    assert image.size == size
    assert image.format == "JPEG" and image.mode == "RGB"
    assert not image.getexif()
    assert near(corner(image, "top left"), RED)
    assert near(corner(image, "bottom right"), YELLOW)


def test_cover_crop_keeps_the_centre(client, photos, engine, clean):
    # 4:3 source to a 3:1 box: the middle band is kept, the four quadrants meet at its centre
    image = get_image(client, "/big.jpg?size=300x100&fit=cover")
    assert image.size == (300, 100)
    for where, colour in [("top left", RED), ("top right", GREEN), ("bottom left", BLUE), ("bottom right", YELLOW)]:
        assert near(corner(image, where), colour), (engine, where, corner(image, where))
    # a tall box keeps the central columns: the left/right split sits in the middle
    tall = get_image(client, "/big.jpg?size=100x300&fit=cover").convert("RGB")
    assert tall.size == (100, 300)
    assert near(tall.getpixel((45, 30)), RED) and near(tall.getpixel((55, 30)), GREEN)


def test_pad_is_centred_on_the_background(client, photos, engine, clean):
    image = get_image(client, "/hd.jpg?size=300x300&fit=pad&bg=000000").convert("RGB")
    assert image.size == (300, 300)
    assert near(image.getpixel((150, 2)), (0, 0, 0)) and near(image.getpixel((150, 297)), (0, 0, 0))
    assert near(image.getpixel((75, 100)), RED) and near(image.getpixel((225, 200)), YELLOW)


def test_upscale_only_on_request(client, photos, engine, clean):
    assert get_image(client, "/small.jpg?size=400x400").size == (200, 100)
    assert get_image(client, "/small.jpg?size=400x400&upscale=1").size == (400, 200)


def test_quality_changes_the_bytes(client, photos, engine, clean):
    low = body(client.get("/hd.jpg?size=600x400&quality=10"))
    high = body(client.get("/hd.jpg?size=600x400&quality=95"))
    assert decode(low).size == decode(high).size == (600, 338)
    assert len(low) < len(high)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(client, media_root, engine, clean, orientation):
    media_factory.jpeg_with_orientation(media_root / f"o{orientation}.jpg", orientation)
    image = get_image(client, f"/o{orientation}.jpg?size=100x100")
    assert image.size == ((100, 50) if orientation <= 4 else (50, 100))
    assert not image.getexif()
    red_corner = {1: "top left", 2: "top right", 3: "bottom right", 4: "bottom left",
                  5: "top left", 6: "top right", 7: "bottom right", 8: "bottom left"}[orientation]
    assert near(corner(image, red_corner), RED), (engine, orientation, corner(image, red_corner))


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_exif_orientation_with_a_cover_crop(client, media_root, engine, clean, orientation):
    media_factory.jpeg_with_orientation(media_root / f"c{orientation}.jpg", orientation, 800, 400)
    image = get_image(client, f"/c{orientation}.jpg?size=100x100&fit=cover")
    assert image.size == (100, 100)
    red_corner = {5: "top left", 6: "top right", 7: "bottom right", 8: "bottom left"}[orientation]
    assert near(corner(image, red_corner), RED), (engine, orientation)


def test_grey_jpeg_stays_grey(client, media_root, engine, clean):
    media_factory.save(media_factory.photo(300, 200, "L"), media_root / "grey.jpg", quality=90)
    image = get_image(client, "/grey.jpg?size=150x100")
    assert image.mode == "L" and image.size == (150, 100)


@pytest.mark.parametrize(("fmt", "pillow_format"), [("png", "PNG"), ("webp", "WEBP"), ("gif", "GIF")])
def test_convert_output_formats(client, photos, clean, fmt, pillow_format):
    response = client.get(f"/hd.jpg?size=160x90&format={fmt}&engine=convert")
    assert response["Content-Type"] == f"image/{fmt}"
    image = decode(body(response))
    assert image.format == pillow_format and image.size == (160, 90)


def test_convert_sources_with_alpha_palette_depth_and_cmyk(client, media_root, clean):
    media_factory.palette_png_with_alpha(media_root / "pal.png")
    media_factory.png_16bit_grey(media_root / "deep.png")
    media_factory.cmyk_jpeg(media_root / "cmyk.jpg")
    media_factory.adobe_rgb_jpeg(media_root / "icc.jpg")
    pal = get_image(client, "/pal.png?size=60x60&engine=convert").convert("RGBA")
    assert pal.getpixel((5, 5))[3] == 0 and pal.getpixel((55, 5))[3] == 255
    flat = get_image(client, "/pal.png?size=60x60&format=jpeg&bg=0000ff&engine=convert")
    assert near(flat.getpixel((5, 5)), BLUE)
    deep = get_image(client, "/deep.png?size=32x32&engine=convert")
    assert deep.mode == "L" and deep.getextrema()[1] > 100
    cmyk = get_image(client, "/cmyk.jpg?size=100x100&engine=convert")
    assert cmyk.mode == "RGB" and near(corner(cmyk, "top left"), RED, 60)
    icc = get_image(client, "/icc.jpg?size=50x50&engine=convert")
    assert "icc_profile" not in icc.info


def test_convert_reads_the_first_frame_of_a_gif(client, media_root, clean):
    frames = [Image.new("RGB", (120, 60), colour) for colour in ("red", "blue")]
    frames[0].save(media_root / "anim.gif", save_all=True, append_images=frames[1:])
    image = get_image(client, "/anim.gif?size=60x60&format=png&engine=convert").convert("RGB")
    assert image.size == (60, 30) and near(image.getpixel((30, 15)), RED)


@pytest.mark.parametrize(
    ("name", "query", "parameter", "words"),
    [
        ("pic.png", "size=100x100&engine=cjpeg", "engine", "does not read png"),
        ("hd.jpg", "size=100x100&format=png&engine=cjpeg", "engine", "does not write png"),
        ("hd.jpg", "size=100x100&format=avif&engine=convert", "engine", "does not write avif"),
        ("hd.jpg", "size=300x300&fit=pad&bg=00ff00&engine=cjpeg", "bg", "white or black"),
    ],
)
def test_engine_refusals_are_400_naming_the_parameter(client, photos, clean, name, query, parameter, words):
    response = client.get(f"/{name}?{query}")
    assert response.status_code == 400
    error = json_error(response)
    assert error["parameter"] == parameter and words in error["message"]


def test_a_refused_request_takes_no_work_slot(client, photos, clean, work_slots):
    """The engine's refusals are decided while planning: with every slot taken, still a 400, not a 503."""
    held = work_slots(1).acquire()
    refused = client.get("/hd.jpg?size=300x300&fit=pad&bg=00ff00&engine=cjpeg")
    assert refused.status_code == 400 and json_error(refused)["parameter"] == "bg"
    assert client.get("/hd.jpg?size=300x300&fit=pad&engine=cjpeg").status_code == 503
    held.release()


def test_cmyk_refused_by_cjpeg(client, media_root, clean):
    media_factory.cmyk_jpeg(media_root / "cmyk.jpg")
    response = client.get("/cmyk.jpg?size=10x10&engine=cjpeg")
    assert response.status_code == 400
    assert "CMYK" in json_error(response)["message"]


def test_unavailable_tool_is_422_naming_the_engine(client, photos, settings, clean):
    settings.TRANSFORMS_DJPEG = "/nonexistent/djpeg"
    response = client.get("/hd.jpg?size=10x10&engine=cjpeg")
    assert response.status_code == 422
    assert json_error(response)["engine"] == "cjpeg"


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_jpeg_is_422_for_every_engine(client, media_root, engine, clean, keep):
    whole = media_factory.save(media_factory.photo(800, 600), media_root / "whole.jpg", quality=90)
    media_factory.truncated(whole, media_root / "cut.jpg", keep)
    response = client.get("/cut.jpg?size=100x100")
    assert response.status_code == 422, (engine, keep)
    error = json_error(response)
    assert error["path"] == "cut.jpg"
    if engine != "pillow":
        assert error["engine"] == engine and "could not process" in error["message"]


def test_corrupt_jpeg_data_is_422_for_every_engine(client, media_root, engine, clean):
    data = bytearray(media_factory.save(media_factory.photo(800, 600), media_root / "ok.jpg", quality=90).read_bytes())
    # overwrite the middle of the entropy-coded data with marker bytes that no decoder accepts
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xff\xd9" * 32
    (media_root / "bad.jpg").write_bytes(bytes(data))
    response = client.get("/bad.jpg?size=100x100")
    assert response.status_code in (200, 422)
    if response.status_code == 200:
        decode(body(response))  # a decoder that recovers must still give a whole image


def test_deadline_kills_the_tool_and_leaves_nothing(client, media_root, settings, clean):
    noise = Image.frombytes("RGB", (1600, 1200), os.urandom(1600 * 1200 * 3))
    media_factory.save(noise, media_root / "noise.jpg", quality=95)
    settings.TRANSFORMS_DEADLINE = 1
    response = client.get("/noise.jpg?size=4000x3000&upscale=1&format=png&engine=convert")
    assert response.status_code == 504  # the server's time limit, not the client's fault
    assert json_error(response)["error"] == "deadline_exceeded"
    assert "time limit" in json_error(response)["message"]


# --- real photos and the odd corpus (when ../shared/media is present) ----------------------------

@pytest.mark.parametrize("engine_name", TOOL_ENGINES)
def test_real_photos(client, media_root, shared_media, settings, engine_name, clean):
    engine = ENGINES[engine_name]
    sources = [p for p in sorted((shared_media / "real").iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    tried = 0
    settings.TRANSFORMS_DEFAULT_ENGINE = "pillow"
    for source in sources:
        shutil.copyfile(source, media_root / source.name)
        for query in ("size=300x200", "size=300x200&fit=cover"):
            response = client.get(f"/{source.name}?{query}&engine={engine_name}")
            if engine_name == "cjpeg" and source.suffix.lower() == ".png":
                assert response.status_code == 400
                continue
            assert response.status_code == 200, (source.name, query, response.content)
            image = decode(body(response))
            assert image.mode in ("RGB", "L", "RGBA", "P")
            # the same size as the Pillow engine's (the plan is shared; small sources are not upscaled)
            assert image.size == decode(body(client.get(f"/{source.name}?{query}"))).size, source.name
            assert max(image.size) <= 300
            tried += 1
    assert tried >= 10, engine.name


CONSISTENT_422 = ["pillow__truncated_jpeg.jpg", "thumbor__BlueSquare_truncated.jpg"]


@pytest.mark.parametrize("engine_name", TOOL_ENGINES)
def test_odd_corpus(client, media_root, shared_media, engine_name, clean):
    """Every odd file gives a decodable image or a clear 4xx with a JSON body; never a 500."""
    odd = shared_media / "odd"
    for source in sorted(odd.iterdir()):
        shutil.copyfile(source, media_root / source.name)
    for source in sorted(odd.iterdir()):
        if source.suffix.lower() in (".mp4", ".mov", ".webm"):
            continue
        response = client.get(f"/{source.name}?size=64x64&engine={engine_name}")
        assert response.status_code in (200, 400, 413, 415, 422), (source.name, response.status_code)
        if response.status_code == 200:
            image = decode(body(response))
            assert max(image.size) <= 64
        else:
            assert json_error(response)["message"]
        if source.name in CONSISTENT_422:
            assert response.status_code == 422, source.name

