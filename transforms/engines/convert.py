"""The ImageMagick engine: one ``convert`` per job, its stdout is the result.

The argv carries out the geometry plan without sniffing or guessing:

* the input coder is named from the probed format (``jpeg:/dev/stdin``), so a
  script saved as ``photo.jpg`` is read as a broken JPEG, never run as MVG or MSL;
  stdin is the source file itself, and reading it as ``/dev/stdin`` (a path, not
  ``-``) lets ImageMagick read it in place instead of copying it to a temp file;
* a JPEG source gets ``-define jpeg:size=`` so libjpeg decodes at 1/2, 1/4 or
  1/8 scale in the DCT domain, as Pillow's draft does;
* ``-auto-orient``, then CMYK to sRGB and an embedded ICC profile converted to
  the sRGB profile shipped beside the policy, then one ``-thumbnail`` (which also
  strips metadata) to the size that makes the plan's crop box land on the output
  size, then the crop, then ``-extent`` for ``fit=pad``;
* ImageMagick decodes a truncated or corrupt JPEG "successfully": it pads the
  picture with grey, warns on stderr and exits 0 (its GIF, PNG and WebP readers
  fail properly). ``fatal_stderr`` turns libjpeg's warnings into a failure, which
  the settling pipeline reports as a 422 before any byte of a small result is sent,
  as the Pillow engine and djpeg -strict do. ``-regard-warnings`` would do it too
  but also fails good photos whose XMP metadata ImageMagick cannot parse.

A restrictive ``policy.xml`` (``imagemagick/`` beside this file) is put first on
``MAGICK_CONFIGURE_PATH``: only the GIF, JPEG, PNG and WebP coders, no delegates,
no ``@file`` reads, bounded memory, disk and time, one thread per convert.

ImageMagick 6 writes JPEG, PNG and WebP through a seekable temporary file when
its output is a pipe (it is not our choice, and a killed convert cannot delete
it). Each job therefore gets a private ``MAGICK_TEMPORARY_PATH`` that the
pipeline's close removes after the process group is reaped, so nothing is left
behind even when a client leaves mid-body.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from streaming.pipeline import Pipeline

from ..conf import conf
from ..geometry import ALIGNMENTS
from ..orientation import shown_size
from .base import CommandEngine, ImageJob, tool_version

REVISION = 1
POLICY_DIR = Path(__file__).resolve().parent / "imagemagick"
SRGB_PROFILE = POLICY_DIR / "sRGB.icc"

# Probed format -> ImageMagick input coder (GIF: the first frame only).
INPUT_CODERS = {"jpeg": "jpeg:{path}", "png": "png:{path}", "webp": "webp:{path}", "gif": "gif:{path}[0]"}
OUTPUT_CODERS = {"jpeg": "jpeg", "png": "png", "webp": "webp", "gif": "gif"}
# Modes whose embedded ICC profile is converted to sRGB (a grey profile cannot take an RGB one).
COLOUR_MODES = frozenset({"RGB", "RGBA", "CMYK", "P", "PA", "YCbCr"})
# Where fit=pad puts the picture on its canvas, as ImageMagick names it (``center``, ``northeast``...).
PAD_GRAVITIES = {align: name for name, align in ALIGNMENTS.items()}
# Formats without (full) alpha: transparency is flattened onto ``bg``, as the Pillow engine does.
FLATTENED_OUTPUTS = frozenset({"jpeg", "gif"})


class ConvertEngine(CommandEngine):
    name = "convert"
    input_formats = frozenset(INPUT_CODERS)
    output_formats = frozenset(OUTPUT_CODERS)
    fatal_stderr = re.compile(r"@ warning/jpeg\.c/")
    operations = frozenset({"blur", "sharpen"})

    def tools(self) -> list[str]:
        return [conf.CONVERT]

    def check(self) -> str | None:
        problem = super().check()
        if problem:
            return problem
        if "ImageMagick" not in tool_version(conf.CONVERT):
            return f"{conf.CONVERT} is not ImageMagick (set TRANSFORMS_CONVERT to the real convert)"
        return None

    def version(self) -> str:
        return f"{super().version()}:{REVISION}"

    def environment(self) -> dict[str, str]:
        return {"MAGICK_CONFIGURE_PATH": str(POLICY_DIR)}

    def render(self, job: ImageJob, *, deadline: float, on_close: Callable[[], None]) -> Pipeline:
        scratch = tempfile.mkdtemp(prefix="mediasite-magick-")

        def close() -> None:
            shutil.rmtree(scratch, ignore_errors=True)
            on_close()

        return self.start(job, deadline=deadline, on_close=close, env={"MAGICK_TEMPORARY_PATH": scratch})

    def commands(self, job: ImageJob) -> list[list[str]]:
        info, plan = job.info, job.plan
        argv = [conf.CONVERT]
        if info.format == "jpeg" and plan.scale < 1:
            argv += ["-define", f"jpeg:size={jpeg_size_hint(job)}"]
        argv += [INPUT_CODERS[info.format].format(path="/dev/stdin"), "-auto-orient", *turns(job)]
        if info.mode == "CMYK":
            argv += ["-colorspace", "sRGB"]
        if info.mode in COLOUR_MODES:
            argv += ["-profile", str(SRGB_PROFILE)]
        argv += geometry(job) + filters(job)
        if job.format in FLATTENED_OUTPUTS:
            argv += ["-background", f"#{job.background}", "-alpha", "remove", "-alpha", "off"]
        argv += ["-strip", "-depth", "8"]
        if job.format in ("jpeg", "webp"):
            argv += ["-quality", str(job.quality)]
        elif job.format == "png":
            argv += ["-define", "png:compression-level=6"]
        argv.append(f"{OUTPUT_CODERS[job.format]}:-")
        return [argv]


def jpeg_size_hint(job: ImageJob) -> str:
    """The size libjpeg must at least decode to, in the file's stored orientation.

    It is the whole source scaled as the plan scales it (the crop comes later);
    libjpeg then picks the largest DCT reduction that still gives that many pixels.
    """
    source = job.plan.source
    scale_x, scale_y = axis_scales(job)
    width, height = shown_size((math.ceil(source[0] * scale_x), math.ceil(source[1] * scale_y)), job.orientation)
    return f"{width}x{height}"


def axis_scales(job: ImageJob) -> tuple[float, float]:
    """Output pixels per source pixel along x and y (they differ for fit=fill)."""
    plan = job.plan
    return plan.resize[0] / plan.kept[0], plan.resize[1] / plan.kept[1]


def geometry(job: ImageJob) -> list[str]:
    """Resize (and crop, and pad) as the plan says, scaling its crop box to the resized image."""
    plan = job.plan
    args: list[str] = []
    if plan.crop is not None:
        scale_x, scale_y = axis_scales(job)
        exact = (plan.source[0] * scale_x, plan.source[1] * scale_y)
        scaled = (max(1, round(exact[0])), max(1, round(exact[1])))
        out_w, out_h = plan.resize
        box = plan.crop_in(*exact)
        left = min(max(0, round(box[0])), scaled[0] - out_w)
        top = min(max(0, round(box[1])), scaled[1] - out_h)
        args += ["-thumbnail", f"{scaled[0]}x{scaled[1]}!", "-crop", f"{out_w}x{out_h}+{left}+{top}", "+repage"]
    elif plan.resize != plan.source:
        args += ["-thumbnail", f"{plan.resize[0]}x{plan.resize[1]}!"]
    if plan.canvas is not None:
        args += [
            "-background", f"#{job.background}", "-gravity", PAD_GRAVITIES[plan.align],
            "-extent", f"{plan.canvas[0]}x{plan.canvas[1]}", "+gravity",
        ]
    return args


def turns(job: ImageJob) -> list[str]:
    """rotate= and flip=, after ``-auto-orient`` has applied the file's own orientation."""
    args = ["-rotate", str(job.spec.rotate)] if job.spec.rotate else []
    flip = job.spec.flip or ""
    args += ["-flop"] if "h" in flip else []
    return args + (["-flip"] if "v" in flip else [])


def filters(job: ImageJob) -> list[str]:
    """blur= and sharpen= (Gaussian sigma in output pixels; ImageMagick picks the radius)."""
    args = ["-blur", f"0x{job.spec.blur:g}"] if job.spec.blur is not None else []
    return args + (["-sharpen", f"0x{job.spec.sharpen:g}"] if job.spec.sharpen is not None else [])
