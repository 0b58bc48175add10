"""Resolve a spec against a source size into a finished plan, before any pixels move.

The plan says which box of the (orientation-corrected) source to keep, the size to
resample that box to, and, for ``fit=pad``, the canvas it is centred on. Engines
only carry a plan out; none of them does its own arithmetic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .conf import conf
from .errors import InvalidSpec, NotApplicable
from .spec import TransformSpec

Box = tuple[float, float, float, float]


# fit=cover keeps the part of the source this gravity names; fit=pad puts the picture there on
# its canvas: (x, y) with 0 the left or top edge, 1 the right or bottom, 0.5 the centre.
ALIGNMENTS = {
    "center": (0.5, 0.5), "north": (0.5, 0.0), "south": (0.5, 1.0), "east": (1.0, 0.5), "west": (0.0, 0.5),
    "northeast": (1.0, 0.0), "northwest": (0.0, 0.0), "southeast": (1.0, 1.0), "southwest": (0.0, 1.0),
}  # fmt: skip


@dataclass(frozen=True)
class Plan:
    source: tuple[int, int]  # the picture as shown: after EXIF orientation, rotate and flip
    crop: Box | None  # (left, top, right, bottom) in source pixels; None keeps it all
    resize: tuple[int, int]  # size of the kept box after resampling
    canvas: tuple[int, int] | None = None  # fit=pad: output size, the picture placed on bg by ``align``
    align: tuple[float, float] = (0.5, 0.5)  # fit=pad: where the picture sits on the canvas
    region: Box | None = None  # crop=: the part of the source the result is made from (None: all of it)
    smart: bool = False  # gravity=smart: the engine moves the crop box to the most detailed part of the region
    trim: bool = False  # trim=1: the engine shrinks the region to its content and plans again

    @property
    def output(self) -> tuple[int, int]:
        return self.canvas or self.resize

    @property
    def is_identity(self) -> bool:
        return self.crop is None and self.canvas is None and self.resize == self.source and not self.trim

    def crop_in(self, width: float, height: float) -> Box:
        """The crop box (the whole picture without one) on a ``width`` x ``height`` grid of the same picture.

        Engines decode at a reduced size (JPEG draft, ``djpeg -scale``) or resize before
        they crop (ImageMagick), so each needs the box in its own grid: this is the one
        place it is scaled.
        """
        left, top, right, bottom = self.crop or (0, 0, self.source[0], self.source[1])
        x, y = width / self.source[0], height / self.source[1]
        return (left * x, top * y, right * x, bottom * y)

    @property
    def kept(self) -> tuple[float, float]:
        """Width and height of the part of the source that is kept (the crop box, or all of it)."""
        if self.crop is None:
            return self.source
        return (self.crop[2] - self.crop[0], self.crop[3] - self.crop[1])

    @property
    def scale(self) -> float:
        """Output pixels per source pixel along x (used to pick a decode reduction)."""
        return self.resize[0] / self.kept[0]

    @property
    def offset(self) -> tuple[int, int]:
        """Top-left corner of the picture on the canvas (fit=pad)."""
        canvas = self.canvas or self.resize
        return (int((canvas[0] - self.resize[0]) * self.align[0]), int((canvas[1] - self.resize[1]) * self.align[1]))

    def moved_to(self, left: float, top: float) -> Plan:
        """The same plan with the crop box moved (gravity=smart), kept inside the region."""
        if self.crop is None:
            return self
        width, height = self.kept
        r_left, r_top, r_right, r_bottom = self.region or (0, 0, self.source[0], self.source[1])
        left = min(max(left, r_left), r_right - width)
        top = min(max(top, r_top), r_bottom - height)
        return dataclasses.replace(self, crop=(left, top, left + width, top + height))


def _at_least_one(value: float) -> int:
    return max(1, round(value))


def plan_for(
    source: tuple[int, int], spec: TransformSpec, max_dimension: int | None = None, region: Box | None = None
) -> Plan:
    """Compute the plan for ``spec`` on a source of ``source`` (width, height) pixels, as shown.

    The result is made from ``region`` (default: the spec's ``crop``, else the whole source)
    and may be at most ``max_dimension`` (default TRANSFORMS_MAX_DIMENSION) on a side.
    """
    max_dimension = conf.MAX_DIMENSION if max_dimension is None else max_dimension
    if region is None and spec.crop is not None:
        region = checked_region(source, spec.crop.box(source))
    left, top = (region[0], region[1]) if region else (0.0, 0.0)
    kept = (region[2] - region[0], region[3] - region[1]) if region else source
    box_w, box_h = scaled_box(spec, max_dimension)

    if box_w is None and box_h is None:
        plan = Plan(source, None, (_at_least_one(kept[0]), _at_least_one(kept[1])))
    elif box_w is None or box_h is None:
        scale = box_w / kept[0] if box_w is not None else box_h / kept[1]
        if not spec.upscale:
            scale = min(scale, 1.0)
        plan = Plan(source, None, (_at_least_one(kept[0] * scale), _at_least_one(kept[1] * scale)))
    elif spec.fit == "cover":
        plan = _cover(source, kept, (left, top), (box_w, box_h), spec)
    elif spec.fit == "fill":
        shrink = 1.0 if spec.upscale else min(1.0, kept[0] / box_w, kept[1] / box_h)
        plan = Plan(source, None, (_at_least_one(box_w * shrink), _at_least_one(box_h * shrink)))
    else:
        scale = min(box_w / kept[0], box_h / kept[1])
        if not spec.upscale:
            scale = min(scale, 1.0)
        resize = (_at_least_one(kept[0] * scale), _at_least_one(kept[1] * scale))
        canvas = (box_w, box_h) if spec.fit == "pad" and resize != (box_w, box_h) else None
        plan = Plan(source, None, resize, canvas, ALIGNMENTS.get(spec.gravity, (0.5, 0.5)))
    if region is not None and plan.crop is None:
        plan = dataclasses.replace(plan, crop=region)
    plan = dataclasses.replace(plan, region=region, trim=spec.trim)

    out_w, out_h = plan.output
    if out_w > max_dimension or out_h > max_dimension:
        raise InvalidSpec(
            "size",
            f"the result would be {out_w}x{out_h}, larger than the limit",
            f"results up to {max_dimension}x{max_dimension}",
        )
    return plan


def scaled_box(spec: TransformSpec, max_dimension: int) -> tuple[int | None, int | None]:
    """The size box in output pixels: ``size`` times ``dpr``, refused past the dimension limit."""
    sides = [None if side is None else round(side * spec.dpr) for side in (spec.width, spec.height)]
    if spec.dpr != 1 and any(side is not None and side > max_dimension for side in sides):
        raise InvalidSpec(
            "dpr",
            f"size x dpr would be {'x'.join(str(side or '') for side in sides)}, larger than the limit",
            f"size x dpr up to {max_dimension} on a side",
        )
    return sides[0], sides[1]


def checked_region(source: tuple[int, int], box: Box) -> Box:
    """``crop=`` as a box of the source, refused (422) when it reaches past the source's edge."""
    left, top, right, bottom = box
    if right > source[0] + 1e-6 or bottom > source[1] + 1e-6:
        raise NotApplicable(
            "crop",
            f"the region reaches past the source's edge (the source is {source[0]}x{source[1]})",
            accepted=f"X+W up to {source[0]}, Y+H up to {source[1]}",
        )
    if right - left < 1 or bottom - top < 1:
        raise NotApplicable("crop", "the region is less than one pixel of the source")
    return (left, top, min(right, source[0]), min(bottom, source[1]))


def _cover(source: tuple[int, int], kept: tuple[float, float], origin: tuple[float, float],
           box: tuple[int, int], spec: TransformSpec) -> Plan:
    """Fill the box: crop the kept region to the box's aspect ratio where the gravity says, then resize."""
    box_w, box_h = box
    scale = max(box_w / kept[0], box_h / kept[1])
    crop_w, crop_h = box_w / scale, box_h / scale
    focus = spec.focus
    if focus is not None:  # centre the box on the point, as far as the region allows
        left = min(max(focus[0] * source[0] - crop_w / 2, origin[0]), origin[0] + kept[0] - crop_w)
        top = min(max(focus[1] * source[1] - crop_h / 2, origin[1]), origin[1] + kept[1] - crop_h)
    else:
        align_x, align_y = ALIGNMENTS.get(spec.gravity, (0.5, 0.5))
        left = origin[0] + (kept[0] - crop_w) * align_x
        top = origin[1] + (kept[1] - crop_h) * align_y
    crop: Box | None = (left, top, left + crop_w, top + crop_h)
    if scale > 1 and not spec.upscale:
        resize = (_at_least_one(crop_w), _at_least_one(crop_h))
    else:
        resize = (box_w, box_h)
    if crop == (0, 0, source[0], source[1]):
        crop = None
    return Plan(source, crop, resize, smart=spec.gravity == "smart" and crop is not None)


def even(plan: Plan) -> Plan:
    """The same plan with even output sides (never below 2), as 4:2:0 video encoders need.

    Each side loses at most one pixel, so the aspect ratio barely moves; a padded
    canvas and the picture inside it are both made even.
    """

    def down(size: tuple[int, int]) -> tuple[int, int]:
        return (max(2, size[0] - size[0] % 2), max(2, size[1] - size[1] % 2))

    canvas = down(plan.canvas) if plan.canvas is not None else None
    resize = down(plan.resize)
    if canvas is not None:
        resize = (min(resize[0], canvas[0]), min(resize[1], canvas[1]))
    return dataclasses.replace(plan, resize=resize, canvas=canvas)
