"""HLS made on request and storyboards, through Django's test client with real ffmpeg:
playlists, segments that join without seams, cold segments deep into a long source,
scrub previews, frame=auto, and every bad request refused by name."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from tests import media_factory
from tests.answers import body, refusal
from tests.conftest import serve_media_from
from tests.media_factory import decode
from transforms.engines.ffmpeg import FfmpegEngine
from transforms.engines.segments import SegmentJob
from transforms.geometry import Plan
from transforms.hls import on_audio_grid, timeline
from transforms.probe import MediaInfo
from transforms.sources import Source

pytestmark = pytest.mark.django_db

FPS = 24


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hls")
    media_factory.clip(root / "film.mp4", seconds=30, size="320x180", fps=FPS)
    media_factory.clip(root / "short.mp4", seconds=0.8, size="320x180", fps=FPS)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=12",
                    "-c:a", "libmp3lame", str(root / "tone.mp3")], check=True, timeout=60)  # fmt: skip
    media_factory.save(media_factory.photo(320, 180), root / "photo.jpg", quality=90)
    return root


@pytest.fixture
def media(sources: Path, settings) -> Path:
    return serve_media_from(settings, sources)


def text(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return body(response).decode()


def playlist_urls(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line.startswith("/")]


def rendition_bytes(client, media_playlist: str) -> bytes:
    """The init section and every segment of a media playlist, as one fragmented MP4."""
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', media_playlist).group(1)
    parts = []
    for url in [init, *playlist_urls(media_playlist)]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content)
        parts.append(body(response))
    return b"".join(parts)


def packets(data: bytes, tmp_path: Path) -> dict:
    path = tmp_path / "joined.mp4"
    path.write_bytes(data)
    return json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_packets", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True, check=True, timeout=60,
    ).stdout)  # fmt: skip


def steps(values: list[float]) -> list[float]:
    return [b - a for a, b in zip(values, values[1:], strict=False)]


def spans(playlist: str) -> list[tuple[float, float]]:
    """(start, end) of every segment of a media playlist, from its EXTINF durations."""
    durations = [float(x) for x in re.findall(r"#EXTINF:([\d.]+),", playlist)]
    starts = [sum(durations[:n]) for n in range(len(durations))]
    return [(start, start + duration) for start, duration in zip(starts, durations, strict=True)]


def times(report: dict, kind: str) -> list[float]:
    index = next(s["index"] for s in report["streams"] if s["codec_type"] == kind)
    return sorted(float(p["pts_time"]) for p in report["packets"] if p["stream_index"] == index)


# --- the argv, as a table -------------------------------------------------------

INFO = MediaInfo("mov,mp4", 30.0, "h264", "aac", 1280, 720, 1280, 720, 0, 24.0)
SOURCE = Source(Path("/media/film.mp4"), "film.mp4", 1000, 1)
PLAN = Plan((1280, 720), None, (640, 360))


@pytest.mark.parametrize(
    ("job", "wanted", "unwanted"),
    [
        (SegmentJob(SOURCE, INFO, PLAN, 550, 30, 128, 9.6, 14.4, False, False, 9.6, 14.4),
         ["-copyts -start_at_zero", "-ss 9.6 -t 5.8 -i", "-ss 9.557333 -t 4.906667 -i", "-map 0:V:0 -map 1:a:0",
          "trim=start=9.6:end=14.4,scale=640:360", "-maxrate 550k", "-profile:v high -level:v 3.0",
          "noise=drop=lt(pts\\,460288)+gte(pts\\,690688)", "-ar 48000", "frag_discont",
          "-segment_header_filename /dev/null pipe:1"], ["-frames:v", "-noaccurate_seek"]),
        (SegmentJob(SOURCE, INFO, PLAN, 550, 30, 128, 10.416667, 20.833333, True, True, 10.410667, 20.842667),
         ["-noaccurate_seek -protocol_whitelist file,pipe -format_whitelist", "-ss 10.417167 -t 11.416666 -i",
          "trim=start=10.416167:end=20.832833", "-ss 10.368 -t 10.538667 -i",
          "noise=drop=lt(pts\\,499200)+gte(pts\\,999936)"], []),
        (SegmentJob(SOURCE, INFO, PLAN, 550, 30, 0, 28.8, 30.0, False, False, 28.8, 30.0, last=True),
         ["-ss 28.8 -t 2.2 -i", "-map 0:V:0 -map_metadata", "trim=start=28.8,"], [":end=", "-c:a", "noise"]),
        (SegmentJob(SOURCE, INFO, PLAN, 550, 30, 128, 0, 4.8, True, False, 0, 4.8, init=True),
         ["-frames:v 1", "-segment_header_filename pipe:1 /dev/null", "-ss 0 -t 4.864 -i", "trim=start=0:"],
         ["pipe:1 -"]),
        (SegmentJob(SOURCE, INFO, None, 0, 0, 128, 4.8, 9.6, False, False, 4.8, 9.6),
         ["-ss 4.757333 -t 4.906667 -i", "-map 0:a:0", "-c:a aac"], ["-c:v", "-map 0:V"]),
    ],
)
def test_segment_commands_table(job, wanted, unwanted):
    (argv,) = FfmpegEngine().commands(job)
    line = " ".join(argv)
    assert argv[1:5] == ["-nostdin", "-hide_banner", "-loglevel", "error"]
    assert line.count("-protocol_whitelist file,pipe") == line.count(" -i ")  # every input, not just the first
    assert all(argv[i + 1] == "file:/media/film.mp4" for i, arg in enumerate(argv) if arg == "-i")
    for fragment in wanted:
        assert fragment in line, fragment
    for fragment in unwanted:
        assert fragment not in line, fragment


def test_timeline_cuts_at_keyframes_where_it_can_and_on_a_grid_elsewhere():
    x264 = (0.0, 10.416667, 20.833333)  # a keyframe every 250 frames at 24 fps
    assert [(round(a, 3), round(b, 3), k) for a, b, k, _ in timeline(30.0, x264)] == [
        (0, 10.417, True), (10.417, 20.833, True), (20.833, 25.633, True), (25.633, 30.0, False)]
    assert [round(b, 1) for _, b, _, _ in timeline(30.0)] == [4.8, 9.6, 14.4, 19.2, 24.0, 28.8, 30.0]
    assert [b for _, b, _, _ in timeline(12.0, tuple(range(12)))] == [4, 8, 12.0]  # one every second: 4 s
    assert timeline(2.0) == [(0, 2.0, True, False)]
    for duration, keys in ((0.5, ()), (4.8, ()), (29.99, x264), (600.0, tuple(range(0, 600, 50)))):
        cuts = timeline(duration, keys)
        assert cuts[0].start == 0 and cuts[-1].end == duration
        pairs = zip(cuts, cuts[1:], strict=False)
        assert all(a.end == b.start and a.keyframe_end == b.keyframe_start for a, b in pairs)
        assert all(b.end - b.start >= min(1, duration) for b in cuts) and max(b.end - b.start for b in cuts) <= 12


def test_audio_is_cut_on_one_grid_of_aac_frames():
    for seconds in (0, 4.8, 10.416667, 25.633333, 599.99):
        cut = on_audio_grid(seconds)
        assert round(cut * 48000) % 1024 == 0 and abs(cut - seconds) <= 512 / 48000


# --- playlists ------------------------------------------------------------------


def test_master_and_media_playlists_are_complete_before_anything_is_transcoded(client, media, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ffmpeg started for a playlist")

    monkeypatch.setattr(FfmpegEngine, "render", refuse)  # playlists are written from the probe alone
    response = client.get("/film.mp4?format=hls")
    assert response["Content-Type"] == "application/vnd.apple.mpegurl"
    master = body(response).decode()
    assert master.startswith("#EXTM3U\n")
    (entry,) = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
    assert 'RESOLUTION=320x180' in entry and 'CODECS="avc1.64001e,mp4a.40.2"' in entry  # no taller than the source
    assert int(re.search(r"BANDWIDTH=(\d+)", entry).group(1)) > 128_000
    (media_url,) = playlist_urls(master)
    assert "rendition=180" in media_url
    playlist = text(client, media_url)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist and playlist.rstrip().endswith("#EXT-X-ENDLIST")
    durations = [float(x) for x in re.findall(r"#EXTINF:([\d.]+),", playlist)]
    assert durations == [10.417, 10.417, 4.8, 4.367]  # at the source's keyframes, then every 4.8 s
    assert abs(sum(durations) - 30) < 0.01 and len(durations) == len(playlist_urls(playlist))
    assert int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", playlist).group(1)) >= max(durations)


def test_a_taller_source_offers_a_ladder(client, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    media_factory.clip(tmp_path / "hd.mp4", seconds=1, size="1280x720", fps=FPS)
    master = text(client, "/hd.mp4?format=hls")
    assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["640x360", "1280x720"]
    assert "avc1.64001f" in master  # 720p at 24 fps: level 3.1


def test_signed_playlists_carry_urls_that_are_accepted(client, media, settings):
    settings.TRANSFORMS_SIGNING = "required"
    assert client.get("/film.mp4?format=hls").status_code == 403
    from transforms.signing import media_url

    master = text(client, media_url("film.mp4", format="hls"))
    playlist = text(client, playlist_urls(master)[0])
    init = re.search(r'URI="([^"]+)"', playlist).group(1)
    assert "sig=" in init and all("sig=" in url for url in playlist_urls(playlist))
    response = client.get(playlist_urls(playlist)[-1])
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    assert body(response)[4:8] == b"moof"
    assert client.get(playlist_urls(playlist)[-1].replace("segment=3", "segment=2")).status_code == 403


# --- segments ---------------------------------------------------------------------


def test_segments_join_without_seams(client, media, tmp_path, tool_children):
    """All segments of a rendition, concatenated: the source's duration, no video gap over a frame,
    no audio gap or overlap over 30 ms, each segment opening on a keyframe at its nominal time."""
    with tool_children():
        playlist = text(client, "/film.mp4?format=hls&rendition=180")
        report = packets(rendition_bytes(client, playlist), tmp_path)
    assert abs(float(report["format"]["duration"]) - 30) < 0.1
    stream = next(s for s in report["streams"] if s["codec_type"] == "video")
    assert (stream["profile"], stream["level"]) == ("High", 30)  # what the master playlist's CODECS says
    video, audio = times(report, "video"), times(report, "audio")
    assert len(video) == 30 * FPS
    assert max(steps(video)) <= 1 / FPS + 1e-3
    assert min(steps(video)) > 0  # no frame twice
    frame = 1024 / 48000
    assert max(steps(audio)) <= frame + 0.030 and min(steps(audio)) >= frame - 0.030
    assert abs(audio[-1] + frame - 30) < 0.03 and audio[0] < 0.03
    keyframes = {round(float(p["pts_time"]), 3) for p in report["packets"]
                 if p["flags"].startswith("K") and p["stream_index"] == report["streams"][0]["index"]}  # fmt: skip
    for start, _ in spans(playlist):
        assert any(abs(k - start) < 1 / FPS for k in keyframes), start


def test_a_cold_segment_near_the_end_of_a_long_source(client, long_clip, settings, tmp_path, private_result_cache):
    serve_media_from(settings, long_clip.parent)
    cuts = spans(text(client, "/long.mp4?format=hls&rendition=90"))
    index = len(cuts) - 2
    url = f"/long.mp4?format=hls&rendition=90&segment={index}"
    response = client.get(url)
    assert response.status_code == 200 and response["Accept-Ranges"] == "none"  # made now, streamed
    segment = body(response)
    init = body(client.get("/long.mp4?format=hls&rendition=90&segment=init"))
    report = packets(init + segment, tmp_path)
    video = [p for p in report["packets"] if p["codec_type"] == "video"]
    assert video[0]["flags"].startswith("K")
    assert abs(float(video[0]["pts_time"]) - cuts[index][0]) < 1 / 5 + 1e-3  # 5 fps source
    assert abs(float(video[-1]["pts_time"]) - cuts[index][1]) <= 1 / 5 + 1e-3
    assert any(p["codec_type"] == "audio" for p in report["packets"])
    again = client.get(url)
    assert again["Accept-Ranges"] == "bytes" and body(again) == segment  # kept in the result cache


def test_an_audio_file_gets_an_audio_rendition(client, media, tmp_path):
    master = text(client, "/tone.mp3?format=hls")
    assert 'CODECS="mp4a.40.2"' in master and "RESOLUTION" not in master
    playlist = text(client, playlist_urls(master)[0])
    response = client.get(playlist_urls(playlist)[1])
    assert response["Content-Type"] == "audio/mp4" and body(response)[4:8] == b"moof"
    report = packets(rendition_bytes(client, playlist), tmp_path)
    assert [s["codec_type"] for s in report["streams"]] == ["audio"]
    assert abs(float(report["format"]["duration"]) - 12) < 0.1


# --- storyboards --------------------------------------------------------------------


def test_storyboard_track_and_sprite_sheets(client, media, long_clip, settings):
    track = text(client, "/film.mp4?storyboard=80x60&interval=2.5")
    assert track.startswith("WEBVTT\n")
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)", track)
    assert len(cues) == 12 and cues[-1][1] == "00:00:30.000"
    assert {c[5:] for c in cues} == {("80", "45")}  # 16:9 inside 80x60
    sheet = client.get(cues[-1][2])
    assert sheet["Content-Type"] == "image/jpeg"
    image = decode(body(sheet))
    assert image.size == (10 * 80, 2 * 45)  # 12 tiles: two rows of ten
    settings.MEDIA_ROOT = long_clip.parent
    long_track = text(client, "/long.mp4?storyboard=160x")
    assert long_track.count(" --> ") == 100  # 6 s a tile by default for 10 minutes: one full sheet


def test_frame_auto_is_inside_even_a_short_clip(client, media):
    assert client.get("/short.mp4?frame=1").status_code == 422  # past the end, as before
    response = client.get("/short.mp4?frame=auto&size=160x")
    assert response.status_code == 200 and decode(body(response)).size == (160, 90)
    urls = set()
    for page in ("/", "/play/short.mp4"):  # every picture of the clip on the pages is inside it
        html = client.get(page).content.decode().replace("&amp;", "&")
        urls |= set(re.findall(r"(/short\.mp4\?[^\s\"]*frame=[^\s\"]+)", html))
    assert urls
    for url in urls:
        assert float(re.search(r"frame=([\d.]+)", url).group(1)) < 0.8, url
        response = client.get(url)
        assert response.status_code == 200 and body(response), url  # body() closes it: no tool left running


# --- refusals -----------------------------------------------------------------------

BAD = [
    ("/film.mp4?format=hls&rendition=180&segment=7", 404, "segment"),
    ("/film.mp4?format=hls&rendition=180&segment=-1", 400, "segment"),
    ("/film.mp4?format=hls&rendition=720", 404, "rendition"),
    ("/film.mp4?format=hls&rendition=tall", 400, "rendition"),
    ("/film.mp4?format=hls&segment=1", 400, "segment"),
    ("/film.mp4?rendition=180", 400, "rendition"),
    ("/film.mp4?format=hls&size=100x", 400, "size"),
    ("/photo.jpg?format=hls", 400, "format"),
    ("/photo.jpg?storyboard=160x90", 400, "storyboard"),
    ("/film.mp4?storyboard=8x8", 400, "storyboard"),
    ("/film.mp4?storyboard=2000x", 400, "storyboard"),
    ("/film.mp4?storyboard=160x90&interval=0.1", 400, "interval"),
    ("/film.mp4?storyboard=160x90&interval=99999", 400, "interval"),
    ("/film.mp4?interval=5", 400, "interval"),
    ("/film.mp4?storyboard=160x90&sheet=1", 404, "sheet"),
    ("/film.mp4?storyboard=160x90&size=10x", 400, "size"),
    ("/tone.mp3?storyboard=160x90", 404, "storyboard"),
    ("/tone.mp3?format=hls&rendition=360", 404, "rendition"),
]


@pytest.mark.parametrize(("url", "status", "parameter"), BAD)
def test_bad_requests_name_the_parameter(client, media, tool_children, url, status, parameter):
    with tool_children():
        error = refusal(client, url, status)
    assert error["parameter"] == parameter and error["message"]


def test_storyboard_tiles_never_exceed_the_limit(client, media):
    count = math.ceil(30 / 0.5)
    assert text(client, "/film.mp4?storyboard=16x16&interval=0.5").count(" --> ") == count
