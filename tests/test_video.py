"""Video and audio through Django's test client: outputs checked with ffprobe and Pillow.

The clips are generated once per module (small and short) by ffmpeg itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests import answers, media_factory
from tests.answers import body, corner, json_error, refusal
from tests.conftest import serve_media_from
from tests.media_factory import decode
from transforms.engines.ffmpeg import FfmpegEngine, MediaJob
from transforms.geometry import Plan
from transforms.probe import MediaInfo
from transforms.sources import Source

pytestmark = pytest.mark.django_db

FPS = 24
FRAME = 1 / FPS
RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=60)


def quadrant_clip(path: Path, rotate: int | None = None) -> Path:
    """A 1 s clip of the four-colour card (red top left), optionally tagged with a rotation."""
    still = media_factory.save(media_factory.photo(320, 180), path.with_suffix(".png"))
    plain = path.with_name(path.stem + "-plain.mp4")
    ffmpeg("-loop", "1", "-i", str(still), "-t", "1", "-r", str(FPS), "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", str(plain))  # fmt: skip
    still.unlink()
    if rotate is None:
        plain.rename(path)
    else:
        ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v", f"rotate={rotate}", str(path))
        plain.unlink()
    return path


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    media_factory.clip(root / "clip.mp4", seconds=3, fps=FPS)
    media_factory.clip(root / "silent.mp4", seconds=2, fps=FPS, audio=False)
    quadrant_clip(root / "quad.mp4")
    quadrant_clip(root / "quad90.mp4", rotate=90)
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(root / "tone.m4a"))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "libmp3lame", str(root / "tone.mp3"))
    media_factory.save(media_factory.photo(320, 180), root / "photo.jpg", quality=90)
    return root


@pytest.fixture
def clips(clip_dir: Path, settings) -> Path:
    return serve_media_from(settings, clip_dir)


def probe(data: bytes, tmp_path: Path) -> dict:
    out = tmp_path / "out.bin"
    out.write_bytes(data)
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(out)],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    return json.loads(result.stdout)


def streams(report: dict, kind: str) -> list[dict]:
    return [s for s in report["streams"] if s["codec_type"] == kind]


# --- the argv builder, as a table --------------------------------------------

INFO = MediaInfo("mov,mp4", 10.0, "h264", "aac", 1280, 720, 1280, 720, 0, 24.0)
SOURCE = Source(Path("/media/-odd: name.mp4"), "-odd: name.mp4", 1000, 1)
PLAN = Plan((1280, 720), None, (320, 180))


@pytest.mark.parametrize(
    ("job", "wanted", "unwanted"),
    [
        (MediaJob(SOURCE, INFO, "mp4", PLAN, 85, start=3, duration=5),
         ["-c:v libx264", "-c:a aac", "-movflags frag_keyframe+empty_moov+default_base_moof", "-t 5", "-f mp4",
          "scale=320:180"], ["-an"]),
        (MediaJob(SOURCE, INFO, "webm", PLAN, 85, duration=10, audio=False),
         ["-c:v libvpx-vp9", "-deadline realtime", "-cpu-used 8", "-row-mt 1", "-an", "-f webm"], ["libopus"]),
        (MediaJob(SOURCE, INFO, "mp3", None, 85, duration=10), ["-vn", "-c:a libmp3lame", "-f mp3"], ["-vf"]),
        (MediaJob(SOURCE, INFO, "m4a", None, 85, duration=10), ["-vn", "-c:a aac", "-f ipod", "empty_moov"], []),
        (MediaJob(SOURCE, INFO, "gif", PLAN, 85, duration=2, fps=8),
         ["palettegen", "paletteuse", "fps=8", "-f gif"], ["-c:a"]),
        (MediaJob(SOURCE, INFO, "jpeg", PLAN, 85, frame=2.5),
         ["-ss 2.5 -i", "-frames:v 1", "-c:v mjpeg", "-f image2pipe"], ["-t "]),
    ],
)
def test_commands_table(job, wanted, unwanted):
    (argv,) = FfmpegEngine().commands(job)
    line = " ".join(argv)
    assert argv[1:5] == ["-nostdin", "-hide_banner", "-loglevel", "error"]
    assert "-protocol_whitelist file,pipe" in line
    assert argv[argv.index("-i") + 1] == "file:/media/-odd: name.mp4"  # a path, never a URL or an option
    assert argv[-1] == "pipe:1"
    if job.start or job.frame:
        assert argv.index("-ss") < argv.index("-i")  # input seek: fast
    for fragment in wanted:
        assert fragment in line, fragment
    for fragment in unwanted:
        assert fragment not in line, fragment


# --- transcodes, checked with ffprobe ----------------------------------------


@pytest.mark.parametrize(
    ("url", "content_type", "video", "size", "audio", "duration"),
    [
        ("/clip.mp4?size=160x90", "video/mp4", "h264", (160, 90), "aac", 3),
        ("/clip.mp4?format=webm&size=x90&start=1&duration=1", "video/webm", "vp9", (160, 90), "opus", 1),
        ("/clip.mp4?audio=0&duration=1&fps=12&size=100x100&fit=cover", "video/mp4", "h264", (100, 100), None, 1),
        ("/clip.mp4?format=gif&size=80x&duration=1", "image/gif", "gif", (80, 45), None, 1),
        ("/clip.mp4?format=mp3", "audio/mpeg", None, None, "mp3", 3),
        ("/clip.mp4?format=m4a&start=1", "audio/mp4", None, None, "aac", 2),
        ("/silent.mp4", "video/mp4", "h264", (320, 180), None, 2),
        ("/tone.mp3?format=m4a", "audio/mp4", None, None, "aac", 2),
        ("/tone.m4a?format=mp3&duration=1", "audio/mpeg", None, None, "mp3", 1),
        ("/quad90.mp4?size=90x", "video/mp4", "h264", (90, 160), None, 1),
    ],
)
def test_transcodes(client, clips, tmp_path, tool_children, url, content_type, video, size, audio, duration):
    if "?" not in url:
        url += "?quality=60"
    with tool_children():
        response = client.get(url)
        assert response.status_code == 200, response.content if not response.streaming else url
        assert response["Content-Type"] == content_type
        assert response["Accept-Ranges"] == "none"
        data = body(response)
    report = probe(data, tmp_path)
    pictures, sounds = streams(report, "video"), streams(report, "audio")
    if video:
        assert [s["codec_name"] for s in pictures] == [video]
        assert (pictures[0]["width"], pictures[0]["height"]) == size
        assert int(pictures[0].get("tags", {}).get("rotate", 0)) == 0
        assert "side_data_list" not in pictures[0]  # rotation applied, not passed on
    else:
        assert pictures == []
    assert [s["codec_name"] for s in sounds] == ([audio] if audio else [])
    measured = float(pictures[0]["duration"] if video and "duration" in pictures[0] else report["format"]["duration"])
    slack = FRAME + 0.001 if video else 0.06  # one frame; an AAC/MP3 frame for audio
    assert abs(measured - duration) <= slack, (measured, duration)
    if content_type in ("video/mp4", "audio/mp4"):
        assert data[4:8] == b"ftyp" and b"moof" in data and b"mvex" in data  # fragmented


def test_fps_changes_the_frame_rate(client, clips, tmp_path):
    report = probe(body(client.get("/clip.mp4?fps=12&duration=1")), tmp_path)
    assert streams(report, "video")[0]["r_frame_rate"] == "12/1"


# --- frame grabs -------------------------------------------------------------


def near(colour, expected) -> bool:
    """Video frames pass through 4:2:0 chroma: a wider tolerance than images."""
    return answers.near(colour, expected, tolerance=60)


@pytest.mark.parametrize(
    ("query", "fmt", "size"),
    [
        ("frame=1.5&size=160x90", "JPEG", (160, 90)),
        ("frame=1&size=100x100&fit=cover&format=png", "PNG", (100, 100)),
        ("frame=0&format=webp", "WEBP", (320, 180)),
        ("frame=2&size=100x100&fit=pad&bg=00ff00", "JPEG", (100, 100)),
    ],
)
def test_frame_grabs(client, clips, tool_children, query, fmt, size):
    with tool_children():
        response = client.get(f"/clip.mp4?{query}")
        assert response.status_code == 200
        image = decode(body(response))
    assert image.format == fmt
    assert image.size == size


def test_different_frames_differ(client, clips):
    first = decode(body(client.get("/clip.mp4?frame=0.5&format=png")))
    second = decode(body(client.get("/clip.mp4?frame=2.5&format=png")))
    assert first.size == second.size == (320, 180)
    assert first.tobytes() != second.tobytes()


def test_frame_of_a_rotated_clip_is_upright(client, clips):
    plain = decode(body(client.get("/quad.mp4?frame=0.5&format=png")))
    turned = decode(body(client.get("/quad90.mp4?frame=0.5&format=png")))
    assert plain.size == (320, 180) and turned.size == (180, 320)
    assert near(corner(plain, "top left"), RED)
    # the display matrix turns the picture a quarter counterclockwise: top right comes to top left
    assert near(corner(turned, "top left"), GREEN)
    assert near(corner(turned, "bottom left"), RED)


def test_frame_grab_etag_and_304_before_probing(client, clips, settings, tmp_path):
    calls = tmp_path / "calls"
    counting = tmp_path / "ffprobe"
    counting.write_text(f"#!/bin/sh\n[ \"$1\" = -version ] || echo run >> {calls}\nexec ffprobe \"$@\"\n")
    counting.chmod(0o755)
    settings.TRANSFORMS_FFPROBE = str(counting)
    response = client.get("/clip.mp4?frame=1&size=64x36")
    assert response.status_code == 200
    body(response)
    assert calls.read_text().count("run") == 1
    etag = response["ETag"]
    again = client.get("/clip.mp4?frame=1&size=64x36", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again["ETag"] == etag
    assert calls.read_text().count("run") == 1  # the 304 ran no ffprobe
    other = client.get("/clip.mp4?frame=2&size=64x36", HTTP_IF_NONE_MATCH=etag)
    assert other.status_code == 200
    body(other)
    assert calls.read_text().count("run") == 1  # the probe of this file version is kept


def test_format_auto_picks_a_frame_format_from_accept(client, clips):
    response = client.get("/clip.mp4?frame=1&format=auto&size=64x", HTTP_ACCEPT="image/webp,*/*")
    assert response["Content-Type"] == "image/webp"
    assert response["Vary"] == "Accept"
    assert decode(body(response)).format == "WEBP"


# --- refusals: clear 4xx JSON, nothing left running --------------------------


@pytest.mark.parametrize(
    ("url", "status", "parameter"),
    [
        ("/clip.mp4?frame=3.5", 422, "frame"),
        ("/clip.mp4?frame=99", 422, "frame"),
        ("/clip.mp4?start=3", 422, "start"),
        ("/clip.mp4?format=png", 422, "format"),
        ("/clip.mp4?format=jpeg&size=10x10", 422, "format"),
        ("/clip.mp4?format=auto", 422, "format"),
        ("/clip.mp4?frame=1&format=mp4", 400, "format"),
        ("/clip.mp4?frame=1&start=1", 400, "frame"),
        ("/clip.mp4?frame=1&audio=0", 400, "frame"),
        ("/clip.mp4?format=mp3&audio=0", 400, "audio"),
        ("/clip.mp4?format=m4a&size=10x10", 400, "size"),
        ("/clip.mp4?engine=pillow", 422, "engine"),
        ("/clip.mp4?fps=0", 400, "fps"),
        ("/clip.mp4?fps=500", 400, "fps"),
        ("/clip.mp4?audio=2", 400, "audio"),
        ("/clip.mp4?format=flv", 400, "format"),
        ("/tone.mp3?frame=1", 422, "frame"),
        ("/tone.m4a?format=mp4", 422, "format"),
        ("/tone.m4a?size=10x10&format=mp3", 400, "size"),
        ("/tone.m4a?fps=10", 422, "fps"),
        ("/silent.mp4?format=mp3", 422, "format"),
        ("/photo.jpg?format=mp4", 400, "format"),
        ("/photo.jpg?frame=1", 400, "frame"),
        ("/photo.jpg?fps=10", 400, "fps"),
        ("/photo.jpg?audio=0", 400, "audio"),
    ],
)
def test_refusals_name_the_parameter(client, clips, tool_children, url, status, parameter):
    with tool_children():
        response = client.get(url)
        assert response.status_code == status, response.content
        assert json_error(response)["parameter"] == parameter


def test_limits_follow_settings(client, clips, settings):
    settings.TRANSFORMS_MAX_OUTPUT_DURATION = 2
    assert refusal(client, "/clip.mp4?size=64x36", 422)["parameter"] == "duration"
    assert client.get("/clip.mp4?size=64x36&duration=2").status_code == 200
    settings.TRANSFORMS_MAX_SOURCE_DURATION = 2
    assert json_error(client.get("/clip.mp4?size=64x36&duration=1"))["limit_seconds"] == 2
    settings.TRANSFORMS_MAX_VIDEO_PIXELS = 320 * 100
    assert refusal(client, "/silent.mp4?frame=1", 413)["limit_pixels"] == 32000


def test_a_transcode_takes_heavier_work_slots(client, clips, work_slots):
    slots = work_slots(3)
    streaming = client.get("/clip.mp4?size=64x36")  # started, not read: holds its slots
    assert streaming.status_code == 200
    assert slots.used == 2
    frame = client.get("/clip.mp4?frame=1&size=64x36")
    assert frame.status_code == 200
    body(frame)
    busy = client.get("/clip.mp4?format=webm&size=64x36")
    assert busy.status_code == 503
    assert busy["Retry-After"] == "1"
    streaming.close()
    assert slots.used == 0


BAD_FILES = [
    ("empty.webm", lambda root: b"", 422),
    ("text.mp4", lambda root: b"this is not a video\n" * 10, 422),
    ("noise.mkv", lambda root: bytes(range(256)) * 64, 422),
    ("cut.mp4", lambda root: (root / "clip.mp4").read_bytes()[:2000], 422),
    ("notes.txt", lambda root: b"plain text", 415),
]


def test_an_image_engine_on_a_file_that_is_not_media_is_a_415(client, clips, tmp_path, settings):
    (tmp_path / "script.jpg").write_bytes(b"push graphic-context\nviewbox 0 0 10 10\n")
    settings.MEDIA_ROOT = tmp_path
    assert client.get("/script.jpg?size=10x10&engine=pillow").status_code == 415


@pytest.mark.parametrize(("name", "content", "status"), BAD_FILES)
def test_bad_files_give_a_clear_4xx(client, clips, tmp_path, settings, tool_children, name, content, status):
    root = tmp_path / "bad"
    root.mkdir()
    (root / name).write_bytes(content(clips))
    settings.MEDIA_ROOT = root
    with tool_children():
        for query in ("size=64x36", "frame=1", "format=webm"):
            response = client.get(f"/{name}?{query}")
            assert response.status_code == status, (query, response.content)
            assert json_error(response)["path"] == name


def test_damage_after_the_header_is_a_4xx_not_a_500(client, clips, tmp_path, settings, tool_children):
    root = tmp_path / "bad"
    root.mkdir()
    data = bytearray((clips / "silent.mp4").read_bytes())  # faststart: header first, then the pictures
    data[len(data) // 3 :] = b"\0" * (len(data) - len(data) // 3)
    (root / "zeroed.mp4").write_bytes(bytes(data))
    settings.MEDIA_ROOT = root
    with tool_children():
        response = client.get("/zeroed.mp4?frame=1.9")
        assert response.status_code == 422
        error = json_error(response)
        assert "could not process" in error["message"]
        assert str(root) not in json.dumps(error)  # no server paths in the body


# --- the shared corpus (skipped when absent) ----------------------------------

ODD_MEDIA = {
    "ffmpeg-progress__corrupt.mp4": 422,
    "moviepy__result.webm": 422,
    "videometa__truncated.mp4": 422,
}


@pytest.fixture
def odd_root(shared_media, tmp_path, settings) -> Path:
    root = tmp_path / "odd"
    root.mkdir()
    for source in (shared_media / "odd").iterdir():
        if source.suffix.lower() in (".mp4", ".mov", ".webm"):
            shutil.copyfile(source, root / source.name)
    settings.MEDIA_ROOT = root
    return root


def test_odd_corpus_bad_files(client, odd_root, tool_children):
    with tool_children():
        for name, status in ODD_MEDIA.items():
            for query in ("size=64x36", "frame=0.5"):
                response = client.get(f"/{name}?{query}")
                assert response.status_code == status, (name, query, response.content)
                assert json_error(response)["path"] == name


def test_odd_corpus_iphone_mov_is_turned_upright(client, odd_root, tmp_path):
    """Audio is stream 0 and the display matrix says 180 degrees: ffmpeg must turn it."""
    name = "fluent-ffmpeg__IMG_0034.MOV"
    upright = decode(body(client.get(f"/{name}?frame=1&format=png")))
    assert upright.size == (568, 320)
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-noautorotate", "-ss", "1", "-i", str(odd_root / name),
         "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "pipe:1"],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    stored = decode(raw).convert("RGB")
    assert stored.size == upright.size
    turned = stored.rotate(180)
    assert difference(upright.convert("RGB"), turned) < difference(upright.convert("RGB"), stored)
    report = probe(body(client.get(f"/{name}?size=284x")), tmp_path)
    assert (streams(report, "video")[0]["width"], streams(report, "video")[0]["height"]) == (284, 160)
    assert [s["codec_name"] for s in streams(report, "audio")] == ["aac"]


def test_odd_corpus_non_square_pixels_are_made_square(client, odd_root):
    image = decode(body(client.get("/mp4parse__h264_white_frame_sar_16_9.mp4?frame=0&format=png")))
    assert image.size == (1138, 480)  # 640 samples, each 16:9 wide


def test_odd_corpus_moov_at_the_end_still_transcodes(client, odd_root, tmp_path):
    report = probe(body(client.get("/videometa__nonfaststart.mp4?size=160x&duration=1")), tmp_path)
    assert streams(report, "video")[0]["width"] == 160


def difference(a, b) -> int:
    small_a, small_b = a.resize((32, 18)), b.resize((32, 18))
    pairs = zip(small_a.getdata(), small_b.getdata(), strict=True)
    return sum(abs(x - y) for p, q in pairs for x, y in zip(p, q, strict=True))


def test_real_big_buck_bunny(client, shared_media, tmp_path, settings):
    settings.MEDIA_ROOT = shared_media / "real"
    report = probe(body(client.get("/moviepy__big_buck_bunny_0_30.webm?size=320x&start=10&duration=1")), tmp_path)
    assert streams(report, "video")[0]["codec_name"] == "vp9"
    assert streams(report, "video")[0]["width"] == 320
    assert streams(report, "audio")[0]["codec_name"] == "opus"
    report = probe(body(client.get("/ffmpegwasm__bbb-1080p-60fps-2s.mp4?size=x180&duration=1")), tmp_path)
    assert streams(report, "video")[0]["height"] == 180
    assert streams(report, "audio")[0]["channels"] == 2  # 5.1 mixed down for the web
    image = decode(body(client.get("/moviepy__big_buck_bunny_0_30.webm?frame=20&size=240x160&fit=cover")))
    assert image.size == (240, 160)


def test_head_of_a_transcode_leaves_nothing_running(client, clips, tool_children):
    with tool_children():
        response = client.head("/clip.mp4?size=64x36")
        assert response.status_code == 200
        assert response["Content-Type"] == "video/mp4"
        response.close()


def test_video_deadline_stops_a_transcode_that_outlives_it(client, clips, settings, tool_children):
    from streaming.pipeline import DeadlineExceeded

    settings.TRANSFORMS_VIDEO_DEADLINE = 1
    with tool_children():
        response = client.get("/clip.mp4?format=webm&quality=100")
        assert response.status_code == 200
        chunks = iter(response.streaming_content)
        next(chunks)
        time.sleep(1.2)  # a client this slow outlives the deadline
        with pytest.raises(DeadlineExceeded):
            for _ in chunks:
                pass
        response.close()


# --- pure parts: ffprobe reports and even plans, as tables ------------------

VIDEO = {"codec_type": "video", "codec_name": "h264", "width": 640, "height": 360, "avg_frame_rate": "30000/1001"}
AUDIO = {"codec_type": "audio", "codec_name": "aac"}


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ({"streams": [VIDEO, AUDIO], "format": {"duration": "4.5"}},
         {"width": 640, "height": 360, "rotation": 0, "duration": 4.5, "audio_codec": "aac"}),
        ({"streams": [{**VIDEO, "side_data_list": [{"rotation": -90}]}], "format": {}},
         {"width": 360, "height": 640, "rotation": 90, "duration": None}),
        ({"streams": [{**VIDEO, "side_data_list": [{"rotation": 90}]}], "format": {"duration": "N/A"}},
         {"width": 360, "height": 640, "rotation": 270}),
        ({"streams": [{**VIDEO, "side_data_list": [{"rotation": -180}]}], "format": {}},
         {"width": 640, "height": 360, "rotation": 180}),
        ({"streams": [{**VIDEO, "tags": {"rotate": "90"}}], "format": {}}, {"width": 360, "rotation": 90}),
        ({"streams": [{**VIDEO, "sample_aspect_ratio": "4:3"}], "format": {}},
         {"width": 853, "height": 360, "stored_width": 640}),
        ({"streams": [{**VIDEO, "sample_aspect_ratio": "0:1"}], "format": {}}, {"width": 640}),
        ({"streams": [AUDIO, {**VIDEO, "disposition": {"attached_pic": 1}}], "format": {"duration": "3"}},
         {"video_codec": None, "width": 0, "audio_codec": "aac"}),
        ({"streams": [{**VIDEO, "duration": "2.0"}], "format": {}}, {"duration": 2.0}),
        ({"streams": [VIDEO], "format": {}}, {"fps": 30000 / 1001}),
    ],
)
def test_describe_ffprobe_reports(report, expected):
    from transforms.probe import describe

    info = describe(report)
    for name, value in expected.items():
        assert getattr(info, name) == value, name


@pytest.mark.parametrize(
    ("plan", "resize", "canvas"),
    [
        (Plan((1280, 720), None, (301, 169)), (300, 168), None),
        (Plan((1280, 720), None, (1, 1)), (2, 2), None),
        (Plan((1280, 720), None, (300, 169), (301, 301)), (300, 168), (300, 300)),
        (Plan((1280, 720), None, (320, 180)), (320, 180), None),
    ],
)
def test_even_plans_for_4_2_0_video(plan, resize, canvas):
    from transforms.geometry import even

    made = even(plan)
    assert (made.resize, made.canvas) == (resize, canvas)
