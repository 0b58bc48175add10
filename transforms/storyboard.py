"""Scrub previews: a WebVTT thumbnails track whose cues point into sprite sheets of tiles.

    ?storyboard=160x90&interval=5           text/vtt, one cue per interval: "<sheet URL>#xywh=x,y,w,h"
    ?storyboard=160x90&interval=5&sheet=2   one sheet: a JPEG of up to COLUMNS x ROWS tiles

The track is written from ffprobe's report alone, so a player has it at once; each
sheet is a transform of the same video (``transforms.engines.sprites``), made when
first asked for, then cached, and signed like every URL here. A tile fits the
``storyboard`` box with the source's aspect ratio (``fit=contain``, never upscaled).
Without ``interval`` a tile covers about a hundredth of the clip, 1 to 10 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .engines.sprites import SheetJob
from .engines.text import TextJob
from .errors import NotApplicable, NotOffered
from .geometry import Plan, plan_for
from .probe import MediaInfo
from .signing import media_url
from .sources import Source
from .spec import TransformSpec

COLUMNS = ROWS = 10
MAX_TILES = 10_000
# Sources up to this many pixels have every frame decoded for their tiles; larger ones keyframes only.
DECODE_ALL_PIXELS = 640 * 360


@dataclass(frozen=True)
class Board:
    plan: Plan  # one tile
    interval: float
    tiles: int  # over the whole clip

    @property
    def tile(self) -> tuple[int, int]:
        return self.plan.output

    @property
    def per_sheet(self) -> int:
        return COLUMNS * ROWS

    @property
    def sheets(self) -> int:
        return math.ceil(self.tiles / self.per_sheet)

    def place(self, index: int) -> tuple[int, int, int]:
        """The sheet of tile ``index`` and the tile's top-left corner in it."""
        sheet, slot = divmod(index, self.per_sheet)
        return sheet, (slot % COLUMNS) * self.tile[0], (slot // COLUMNS) * self.tile[1]


def board_for(info: MediaInfo, spec: TransformSpec) -> Board:
    if not info.has_video:
        raise NotOffered("storyboard", "the file has no pictures to make previews of")
    if info.duration is None or info.duration <= 0:
        raise NotApplicable("storyboard", "the file does not say how long it lasts")
    interval = spec.interval or float(max(1, min(10, round(info.duration / 100))))
    tiles = math.ceil(info.duration / interval - 1e-9)
    if tiles > MAX_TILES:
        raise NotApplicable("interval", f"{tiles} tiles would be too many (at most {MAX_TILES})",
                            accepted=f"at least {math.ceil(info.duration / MAX_TILES)} seconds for this file")
    width, height = (int(side) if side else None for side in (spec.storyboard or "x").split("x"))
    plan = plan_for((info.width, info.height), TransformSpec(width=width, height=height))
    return Board(plan, interval, tiles)


def storyboard_job(source: Source, info: MediaInfo, spec: TransformSpec) -> TextJob | SheetJob:
    board = board_for(info, spec)
    if spec.sheet is None:
        return TextJob(source, "vtt", track(source.name, spec, board, info.duration or 0.0).encode())
    if spec.sheet >= board.sheets:
        raise NotOffered("sheet", f"this storyboard has sheets 0..{board.sheets - 1}",
                         accepted=f"0..{board.sheets - 1}")
    first = spec.sheet * board.per_sheet
    rows = math.ceil(min(board.per_sheet, board.tiles - first) / COLUMNS)
    return SheetJob(source, info, board.plan, first * board.interval, board.interval, COLUMNS, rows,
                    keyframes_only=info.width * info.height > DECODE_ALL_PIXELS)


def track(name: str, spec: TransformSpec, board: Board, duration: float) -> str:
    """The WebVTT thumbnails track: every cue names its sheet and the tile's box in it."""
    given = {"storyboard": spec.storyboard, "interval": f"{spec.interval:g}" if spec.interval else None}
    sheets = [media_url(name, **given, sheet=sheet) for sheet in range(board.sheets)]
    lines = ["WEBVTT", ""]
    for index in range(board.tiles):
        sheet, x, y = board.place(index)
        start, end = index * board.interval, min((index + 1) * board.interval, duration)
        lines += [f"{timestamp(start)} --> {timestamp(end)}",
                  f"{sheets[sheet]}#xywh={x},{y},{board.tile[0]},{board.tile[1]}", ""]
    return "\n".join(lines)


def timestamp(value: float) -> str:
    millis = round(value * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
