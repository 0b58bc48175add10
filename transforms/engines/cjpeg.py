"""The libjpeg-turbo engine: ``djpeg -scale M/8 | netpbm | cjpeg``, JPEG in, JPEG out.

libjpeg-turbo decodes straight to a smaller size (M/8 in the DCT domain, the
cheapest downscale there is) and encodes fast, but has no resampler, no crop by
a fractional box and no EXIF rotation. The middle stages are Debian's netpbm
(``pamflip``, ``pamcut``, ``pamscale``, ``pnmpad``): small single-purpose tools
that stream PNM rows from stdin to stdout, maintained for decades, with no
coder sniffing, no delegates and no policy file to get wrong. ImageMagick reading
``ppm:-`` would also do, but it would drag its whole attack surface (and its temp
files) into the one engine meant to be the lean path.

The stages, each only when the plan needs it:

    djpeg -strict -scale M/8     the largest reduction that still leaves enough pixels
    pamflip                      EXIF orientation (djpeg ignores EXIF), on the reduced image
    pamcut                       the plan's crop box, scaled to the decoded size
    pamscale -width W -height H  to the plan's exact size (pixel mixing)
    pnmpad -white|-black         fit=pad canvas; pnmpad knows only white and black
    cjpeg -quality Q             baseline JPEG to stdout

``-strict`` makes djpeg stop with status 1 at the first warning (a truncated or
corrupt file) instead of padding the picture with grey and exiting 2; either way
the settling pipeline reports it as a 422 before the status line, as Pillow does.
CMYK JPEGs are refused: djpeg cannot convert them to RGB. Embedded ICC profiles
are dropped without conversion (cjpeg writes none).
"""

from __future__ import annotations

import math
import os

from ..conf import conf
from ..errors import InvalidSpec
from ..orientation import shown_size
from .base import CommandEngine, ImageJob

REVISION = 1
NETPBM_TOOLS = ("pamflip", "pamcut", "pamscale", "pnmpad")

# EXIF orientation -> the pamflip operation that turns the stored image upright.
ORIENTATION_FLIPS = {
    2: ["-leftright"],
    3: ["-rotate180"],
    4: ["-topbottom"],
    5: ["-transpose"],
    6: ["-cw"],
    7: ["-xform=transpose,leftright,topbottom"],  # transverse: pamflip takes one flip option
    8: ["-ccw"],
}
PAD_COLOURS = {"ffffff": "-white", "000000": "-black"}


def netpbm(tool: str) -> str:
    directory = conf.NETPBM_DIR
    return os.path.join(directory, tool) if directory else tool


class CjpegEngine(CommandEngine):
    name = "cjpeg"
    input_formats = frozenset({"jpeg"})
    output_formats = frozenset({"jpeg"})

    def tools(self) -> list[str]:
        return [conf.DJPEG, conf.CJPEG, *(netpbm(tool) for tool in NETPBM_TOOLS)]

    def version(self) -> str:
        return f"{super().version()}:{REVISION}"

    def refusal(self, job: ImageJob) -> InvalidSpec | None:
        refused = super().refusal(job)
        if refused is None and job.info.mode == "CMYK":
            refused = self.refuse("it does not read CMYK JPEGs (djpeg cannot convert them to RGB); "
                                  "use engine=pillow or convert")
        if refused is None and job.plan.canvas is not None and job.background not in PAD_COLOURS:
            refused = InvalidSpec("bg", "the cjpeg engine pads only with white or black", "ffffff, 000000")
        return refused

    def commands(self, job: ImageJob) -> list[list[str]]:
        plan = job.plan
        eighths = decode_eighths(job)
        stages = [[conf.DJPEG, "-strict", "-scale", f"{eighths}/8"]]

        flip = ORIENTATION_FLIPS.get(job.orientation)
        if flip:
            stages.append([netpbm("pamflip"), *flip])

        # Size of the decoded image as shown (oriented, rotated, flipped): libjpeg rounds each side up.
        stored = shown_size(plan.source, job.orientation)
        decoded = shown_size((math.ceil(stored[0] * eighths / 8), math.ceil(stored[1] * eighths / 8)), job.orientation)

        kept = decoded
        if plan.crop is not None:
            box = plan.crop_in(*decoded)
            left, top = round(box[0]), round(box[1])
            right = min(decoded[0], max(left + 1, round(box[2])))
            bottom = min(decoded[1], max(top + 1, round(box[3])))
            kept = (right - left, bottom - top)
            stages.append([
                netpbm("pamcut"), "-left", str(left), "-top", str(top), "-width", str(kept[0]), "-height", str(kept[1]),
            ])
        if kept != plan.resize:
            stages.append([netpbm("pamscale"), "-width", str(plan.resize[0]), "-height", str(plan.resize[1])])

        if plan.canvas is not None:
            stages.append([
                netpbm("pnmpad"), PAD_COLOURS[job.background], "-width", str(plan.canvas[0]),
                "-height", str(plan.canvas[1]), "-halign", f"{plan.align[0]:g}", "-valign", f"{plan.align[1]:g}",
            ])
        stages.append([conf.CJPEG, "-quality", str(job.quality)])
        return stages


def decode_eighths(job: ImageJob) -> int:
    """M for ``djpeg -scale M/8``: the smallest that still decodes at least the plan's pixels."""
    plan = job.plan
    kept = plan.kept
    needed = max(plan.resize[0] / kept[0], plan.resize[1] / kept[1])
    return min(8, max(1, math.ceil(needed * 8 - 1e-9)))
