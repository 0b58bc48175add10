"""Camera building blocks as pure functions: the JPEG splitter, CAMERAS parsing, ffmpeg argv, framing."""

from __future__ import annotations

import io
import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from PIL import Image

from streaming.cameras import registry
from streaming.cameras.bus import Frame, decode, encode_failure, encode_frame
from streaming.cameras.jpeg_splitter import JpegSplitter
from streaming.cameras.mjpeg import encode_part
from streaming.cameras.sources import (
    EmulatedSource,
    SourceError,
    contained_path,
    file_loop_argv,
    redact,
    url_argv,
    v4l2_argv,
)
from tests import media_factory

QUIET = ["-nostdin", "-hide_banner", "-loglevel", "error"]


def jpeg(colour: tuple[int, int, int], size=(64, 48), **params) -> bytes:
    image = Image.new("RGB", size, colour)
    out = io.BytesIO()
    image.save(out, "JPEG", **params)
    return out.getvalue()


def jpeg_with_thumbnail() -> bytes:
    """A JPEG whose EXIF carries a thumbnail: an EOI marker long before the real end."""
    thumb = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 255, 0)).save(thumb, "JPEG")
    out = io.BytesIO()
    media_factory.photo(120, 80).save(out, "JPEG")
    data = out.getvalue()
    # splice a fake APP1 segment holding a whole thumbnail JPEG right after SOI
    payload = b"Exif\0\0" + thumb.getvalue()
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    return data[:2] + segment + data[2:]


FRAMES = [
    jpeg((255, 0, 0)),
    jpeg((0, 0, 255), size=(320, 240), quality=95, progressive=True),
    jpeg((10, 200, 30), size=(100, 60), optimize=True),
    jpeg_with_thumbnail(),
]


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_splitter_returns_each_frame_byte_for_byte(chunk):
    stream = b"junk" + b"".join(FRAMES) + b"\xff\xd8 truncated"
    splitter = JpegSplitter()
    out = []
    for start in range(0, len(stream), chunk):
        out += splitter.feed(stream[start:start + chunk])
    assert out == FRAMES
    for frame in out:
        Image.open(io.BytesIO(frame)).load()
    assert splitter.dropped >= 4


def test_splitter_skips_a_corrupt_frame_and_resyncs():
    corrupt = b"\xff\xd8\x00\x00garbage"
    out = JpegSplitter().feed(corrupt + FRAMES[0] + FRAMES[1])
    assert out == FRAMES[:2]


def test_splitter_bounds_its_buffer():
    splitter = JpegSplitter(max_frame=1000)
    assert splitter.feed(FRAMES[1][:-2] * 1) == []  # incomplete frame larger than max_frame
    assert splitter.feed(FRAMES[0]) == [FRAMES[0]]
    assert len(splitter._buf) < 1000


VALID = [
    ("demo=emulated", {"demo": ("emulated", "", {})}),
    ("a=emulated?size=320x240&fps=10", {"a": ("emulated", "", {"size": (320, 240), "fps": 10.0})}),
    ("lobby=v4l2:///dev/video0", {"lobby": ("v4l2", "/dev/video0", {})}),
    ("cam=v4l2:///dev/video2?size=1280x720&fps=30&input=yuyv422",
     {"cam": ("v4l2", "/dev/video2", {"size": "1280x720", "fps": 30.0, "input_format": "yuyv422"})}),
    ("door=rtsp://u:p@door.example/s1", {"door": ("url", "rtsp://u:p@door.example/s1", {})}),
    ("ip=http://10.0.0.5/video.mjpg?x=1,loop=file:clips/loop.mp4",
     {"ip": ("url", "http://10.0.0.5/video.mjpg?x=1", {}), "loop": ("file", "clips/loop.mp4", {})}),
    (" demo = emulated , ", {"demo": ("emulated", "", {})}),
    ("", {}),
]


@pytest.mark.parametrize(("value", "expected"), VALID)
def test_cameras_setting(value, expected):
    parsed = registry.parse(value)
    assert list(parsed) == list(expected)
    for name, (kind, target, options) in expected.items():
        camera = parsed[name]
        assert (camera.kind, camera.target, camera.options) == (kind, target, options)


INVALID = [
    ("demo", "name=source"),
    ("Demo=emulated", "lowercase"),
    ("a=emulated,a=emulated", "twice"),
    ("a=webcam", "unknown source"),
    ("a=emulated?size=big", "size"),
    ("a=emulated?fps=0", "fps"),
    ("a=emulated?colour=red", "unknown option"),
    ("a=v4l2://video0", "/dev/videoN"),
    ("a=v4l2:///dev/video0?input=bayer", "input"),
    ("a=rtsp:///nohost", "no host"),
    ("a=file:/etc/passwd", "relative"),
    ("a=file:../outside.mp4", "relative"),
]


@pytest.mark.parametrize(("value", "message"), INVALID)
def test_bad_cameras_setting(value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        registry.parse(value)


def test_descriptions_hide_credentials():
    camera = registry.parse("door=rtsp://admin:secret@door.example/s1")["door"]
    assert "secret" not in camera.description
    assert camera.description == "rtsp://***@door.example/s1"
    assert redact("Connection to rtsp://a:b@h/x failed") == "Connection to rtsp://***@h/x failed"


ARGV = [
    (v4l2_argv("ffmpeg", "/dev/video0"),
     ["ffmpeg", *QUIET, "-protocol_whitelist", "file,pipe", "-f", "v4l2", "-input_format", "mjpeg",
      "-i", "/dev/video0", "-c:v", "copy", "-an", "-f", "mjpeg", "-"]),
    (v4l2_argv("/opt/ff", "/dev/video1", size="1280x720", fps=30, input_format="yuyv422"),
     ["/opt/ff", *QUIET, "-protocol_whitelist", "file,pipe", "-f", "v4l2", "-input_format", "yuyv422",
      "-video_size", "1280x720", "-framerate", "30", "-i", "/dev/video1",
      "-c:v", "mjpeg", "-q:v", "5", "-an", "-f", "mjpeg", "-"]),
    (url_argv("ffmpeg", "rtsp://cam/s1"),
     ["ffmpeg", *QUIET, "-protocol_whitelist", "rtsp,rtp,udp,tcp,pipe", "-rtsp_transport", "tcp",
      "-i", "rtsp://cam/s1", "-c:v", "mjpeg", "-q:v", "5", "-an", "-f", "mjpeg", "-"]),
    (url_argv("ffmpeg", "http://cam/video.mjpg"),
     ["ffmpeg", *QUIET, "-protocol_whitelist", "http,tcp,pipe",
      "-i", "http://cam/video.mjpg", "-c:v", "mjpeg", "-q:v", "5", "-an", "-f", "mjpeg", "-"]),
    (url_argv("ffmpeg", "https://cam/video.mjpg")[5:7], ["-protocol_whitelist", "https,http,tls,tcp,pipe"]),
    (url_argv("ffmpeg", "rtsps://cam/s1")[5:7], ["-protocol_whitelist", "rtsps,rtsp,rtp,udp,tcp,tls,pipe"]),
    (file_loop_argv("ffmpeg", "/media/loop.mp4"),
     ["ffmpeg", *QUIET, "-protocol_whitelist", "file,pipe", "-re", "-stream_loop", "-1",
      "-i", "file:/media/loop.mp4", "-c:v", "mjpeg", "-q:v", "5", "-an", "-f", "mjpeg", "-"]),
]


@pytest.mark.parametrize(("argv", "expected"), ARGV)
def test_ffmpeg_argv(argv, expected):
    assert argv == expected


def test_url_argv_refuses_other_schemes():
    with pytest.raises(ValueError):
        url_argv("ffmpeg", "file:///etc/passwd")


def test_file_sources_stay_inside_the_media_folder(tmp_path):
    root = tmp_path / "media"
    (root / "clips").mkdir(parents=True)
    (root / "clips" / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    os.symlink(tmp_path / "secret.mp4", root / "escape.mp4")
    assert contained_path(root, "clips/a.mp4") == str((root / "clips" / "a.mp4").resolve())
    for bad, message in [("escape.mp4", "outside"), ("../secret.mp4", "outside"), ("/etc/passwd", "relative"),
                         ("clips/missing.mp4", "no such file"), ("clips", "no such file")]:
        with pytest.raises(SourceError, match=message):
            contained_path(root, bad)


def test_framing_and_relay_messages():
    frame = Frame(7, 1700000000.25, FRAMES[0])
    assert decode(encode_frame(frame)) == frame
    assert decode(encode_failure("device gone")) == "device gone"
    part = encode_part(frame)
    head, _, rest = part.partition(b"\r\n\r\n")
    length = f"Content-Length: {len(FRAMES[0])}".encode()
    assert head.split(b"\r\n") == [
        b"--frame", b"Content-Type: image/jpeg", length, b"X-Frame-Seq: 7", b"X-Frame-Time: 1700000000.250000"
    ]
    assert rest == FRAMES[0] + b"\r\n"
    assert encode_part(None) == b"--frame--\r\n"


def test_emulated_frames_move():
    import threading

    stop = threading.Event()
    source = EmulatedSource(size=(160, 120), fps=50)
    frames = source.frames(stop)
    first, second = next(frames), next(frames)
    stop.set()
    assert list(frames) == []
    a, b = Image.open(io.BytesIO(first)), Image.open(io.BytesIO(second))
    assert a.size == b.size == (160, 120)
    assert a.tobytes() != b.tobytes()


def test_system_checks_report_camera_problems(settings, tmp_path):
    from streaming.cameras.checks import check_cameras

    (tmp_path / "ok.mp4").write_bytes(b"x")
    settings.MEDIA_ROOT = tmp_path
    settings.STREAMING_FFMPEG = "ffmpeg"
    settings.CAMERAS = "demo=emulated,ok=file:ok.mp4"
    assert check_cameras() == []
    settings.CAMERAS = "a=bogus"
    assert [m.id for m in check_cameras()] == ["cameras.E001"]
    settings.CAMERAS = "gone=file:gone.mp4,cam=v4l2:///dev/video-missing"
    settings.STREAMING_FFMPEG = "/nonexistent/ffmpeg"
    assert sorted(m.id for m in check_cameras()) == ["cameras.W001", "cameras.W002", "cameras.W003"]
