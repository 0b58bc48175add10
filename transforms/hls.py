"""HLS made on request: the renditions a source offers, its segment timeline and the playlists.

    ?format=hls                              master playlist: one entry per rendition
    ?format=hls&rendition=720                VOD media playlist, complete from the probed duration
    ?format=hls&rendition=720&segment=init   the fMP4 initialization section (ftyp + moov)
    ?format=hls&rendition=720&segment=12     one segment, made by ffmpeg when asked for

Everything here is decided from ffprobe's report, before ffmpeg runs: which renditions
(no taller than the source; an audio rendition for a file without video), how many
segments and where each starts, their bit rate caps and codec strings. Each segment is
then an ordinary transform (``transforms.engines.segments`` builds its argv), so it is
cached, coalesced, signed and limited like any other; a player that seeks asks for
the segment it needs, and only that one is made.

Segments are cut at the source's keyframes where those make segments of 4 to 12 s
(then a segment's ffmpeg decodes nothing it throws away), else every 4.8 s; ffprobe
lists the keyframes from the packets (``probe.keyframe_times``). Audio is cut on the
grid of AAC frames (1024 samples at 48 kHz) nearest each video cut, the same grid in
every segment, so segments made by separate ffmpeg runs join without an audio gap or
overlap (``transforms.engines.segments`` says how each run cuts to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from .engines.segments import AAC_FRAME, AUDIO_RATE, SegmentJob
from .engines.text import TextJob
from .errors import NotApplicable, NotOffered
from .geometry import Plan, even, plan_for
from .probe import MediaInfo, keyframe_times
from .signing import media_url
from .sources import Source
from .spec import TransformSpec

SEGMENT_SECONDS = 4.8  # between cuts where no keyframe serves
# A cut at a source keyframe makes segments this long at least and at most (x264's default
# keyframe interval, 250 frames, is 10.4 s at 24 fps).
MIN_SEGMENT, MAX_SEGMENT = 4.0, 12.0
# A last segment shorter than this is folded into the one before it.
SHORTEST_TAIL = 1.0
LADDER = (360, 720, 1080)
AUDIO_KBPS = 128
# H.264 levels by the macroblocks per frame and per second they allow (ITU-T H.264 Table A-1).
LEVELS = ((30, 1620, 40500), (31, 3600, 108000), (32, 5120, 216000), (40, 8192, 245760),
          (42, 8704, 522240), (50, 22080, 589824), (51, 36864, 983040), (52, 36864, 2073600))  # fmt: skip


@dataclass(frozen=True)
class Rendition:
    """One entry of the master playlist: what its segments are made as."""

    name: str  # the height as a string, or "audio"
    plan: Plan | None  # the picture's geometry; None for the audio rendition
    video_kbps: int  # the encoder's bit rate cap (VBV), 0 without video
    audio_kbps: int  # 0 without audio
    level: int  # H.264 level x 10 (31 = 3.1), 0 without video

    @property
    def codecs(self) -> str:
        """The RFC 6381 codec list: High profile H.264 at our level, AAC-LC."""
        names = [f"avc1.6400{self.level:02x}"] if self.plan is not None else []
        return ",".join(names + (["mp4a.40.2"] if self.audio_kbps else []))

    @property
    def bandwidth(self) -> int:
        """Peak bits per second, as HLS wants it: the caps plus 10% for the container."""
        return round((self.video_kbps + self.audio_kbps) * 1100)


def offered(info: MediaInfo) -> list[Rendition]:
    """The renditions of a source, smallest first: the ladder's heights no taller than it
    (its own height when it is smaller than all of them), or audio alone."""
    audio = AUDIO_KBPS if info.has_audio else 0
    if not info.has_video:
        return [Rendition("audio", None, 0, audio, 0)]
    heights = [height for height in LADDER if height <= info.height] or [info.height]
    renditions = []
    for height in heights:
        plan = even(plan_for((info.width, info.height), TransformSpec(height=height)))
        width, tall = plan.output
        pixels_per_second = width * tall * min(info.fps or 30.0, 60.0)
        kbps = max(300, round(pixels_per_second * 0.1 / 1000))  # 0.1 bit per pixel: ~2.8 Mbit/s at 720p30
        renditions.append(Rendition(str(tall), plan, kbps, audio, level_for(width, tall, info.fps or 30.0)))
    return renditions


def level_for(width: int, height: int, fps: float) -> int:
    """The smallest H.264 level that allows this frame size and rate (x264 is told to write it)."""
    frame = math.ceil(width / 16) * math.ceil(height / 16)
    return next((level for level, max_frame, max_rate in LEVELS if frame <= max_frame and frame * fps <= max_rate),
                LEVELS[-1][0])


class Span(NamedTuple):
    """One segment's stretch of the source: [start, end), and whether each end is a source keyframe."""

    start: float
    end: float
    keyframe_start: bool = False
    keyframe_end: bool = False


def timeline(duration: float, keyframes: tuple[float, ...] = ()) -> list[Span]:
    """The segments: cut at source keyframes that make them MIN_SEGMENT..MAX_SEGMENT long, else
    SEGMENT_SECONDS after the last cut; the last one runs to the end (a short tail is folded in).

    A segment that starts on a keyframe costs its ffmpeg no decoding of frames it drops;
    one that starts between keyframes is still exact, decoded from the keyframe before.
    """
    keys = [k for k in keyframes if 0 < k < duration - SHORTEST_TAIL]
    cuts, on_key = [0.0], [True]
    while duration - cuts[-1] > SEGMENT_SECONDS + SHORTEST_TAIL:
        key = next((k for k in keys if k >= cuts[-1] + MIN_SEGMENT), None)
        aligned = key is not None and key - cuts[-1] <= MAX_SEGMENT
        cuts.append(key if aligned else cuts[-1] + SEGMENT_SECONDS)
        on_key.append(aligned)
    cuts.append(duration)
    on_key.append(False)
    return [Span(cuts[n], cuts[n + 1], on_key[n], on_key[n + 1]) for n in range(len(cuts) - 1)]


def on_audio_grid(seconds: float) -> float:
    """The AAC frame boundary nearest ``seconds``: where the audio of a segment starting there begins."""
    return round(seconds * AUDIO_RATE / AAC_FRAME) * AAC_FRAME / AUDIO_RATE


def hls_job(source: Source, info: MediaInfo, spec: TransformSpec) -> TextJob | SegmentJob:
    """The master playlist, a media playlist or one segment, refusing what this source does not offer."""
    if info.duration is None or info.duration <= 0:
        raise NotApplicable("format", "the file does not say how long it lasts, and a VOD playlist needs that")
    renditions = offered(info)
    if spec.rendition is None:
        return TextJob(source, "hls", master_playlist(source.name, renditions, info).encode())
    rendition = next((r for r in renditions if r.name == spec.rendition), None)
    if rendition is None:
        raise NotOffered("rendition", f"this file has no rendition {spec.rendition}",
                         accepted=", ".join(r.name for r in renditions))
    segments = timeline(info.duration, keyframe_times(source) if info.has_video else ())
    if spec.segment is None:
        return TextJob(source, "hls", media_playlist(source.name, rendition, segments).encode())
    index = 0 if spec.segment == "init" else int(spec.segment)
    if index >= len(segments):
        raise NotOffered("segment", f"rendition {rendition.name} has segments 0..{len(segments) - 1}",
                         accepted=f"init, 0..{len(segments) - 1}")
    span, last = segments[index], index == len(segments) - 1
    return SegmentJob(source, info, rendition.plan, rendition.video_kbps, rendition.level, rendition.audio_kbps,
                      span.start, span.end, span.keyframe_start, span.keyframe_end,
                      on_audio_grid(span.start), on_audio_grid(span.end), last=last, init=spec.segment == "init",
                      quality=spec.effective_quality)


def master_playlist(name: str, renditions: list[Rendition], info: MediaInfo) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rendition in renditions:
        attributes = [f"BANDWIDTH={rendition.bandwidth}", f'CODECS="{rendition.codecs}"']
        if rendition.plan is not None:
            width, height = rendition.plan.output
            attributes.insert(1, f"RESOLUTION={width}x{height}")
            if info.fps:
                attributes.append(f"FRAME-RATE={info.fps:.3f}")
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), media_url(name, format="hls", rendition=rendition.name)]
    return "\n".join(lines) + "\n"


def media_playlist(name: str, rendition: Rendition, segments: list[Span]) -> str:
    longest = max(span.end - span.start for span in segments)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{math.ceil(longest)}", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS",
             f'#EXT-X-MAP:URI="{media_url(name, format="hls", rendition=rendition.name, segment="init")}"']  # fmt: skip
    for index, (start, end, _, _) in enumerate(segments):
        lines += [f"#EXTINF:{end - start:.3f},", media_url(name, format="hls", rendition=rendition.name, segment=index)]
    return "\n".join(lines + ["#EXT-X-ENDLIST"]) + "\n"
