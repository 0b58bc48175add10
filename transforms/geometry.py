"""Resolve a spec against a source size into a finished plan, before any pixels move.

The plan says which box of the (orientation-corrected) source to keep, the size to
resample that box to, and, for ``fit=pad``, the canvas it is centred on. Engines
only carry a plan out; none of them does its own arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from .conf import conf
from .errors import InvalidSpec
from .spec import TransformSpec

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Plan:
    source: tuple[int, int]
    crop: Box | None  # (left, top, right, bottom) in source pixels; None keeps it all
    resize: tuple[int, int]  # size of the kept box after resampling
    canvas: tuple[int, int] | None = None  # fit=pad: output size, image centred on bg

    @property
    def output(self) -> tuple[int, int]:
        return self.canvas or self.resize

    @property
    def is_identity(self) -> bool:
        return self.crop is None and self.canvas is None and self.resize == self.source

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


def _at_least_one(value: float) -> int:
    return max(1, round(value))


def plan_for(source: tuple[int, int], spec: TransformSpec, max_dimension: int | None = None) -> Plan:
    """Compute the plan for ``spec`` on a source of ``source`` (width, height) pixels.

    The result may be at most ``max_dimension`` (default TRANSFORMS_MAX_DIMENSION) on a side.
    """
    max_dimension = conf.MAX_DIMENSION if max_dimension is None else max_dimension
    src_w, src_h = source
    box_w, box_h = spec.width, spec.height

    if box_w is None and box_h is None:
        plan = Plan(source, None, (src_w, src_h))
    elif box_w is None or box_h is None:
        scale = box_w / src_w if box_w is not None else box_h / src_h
        if not spec.upscale:
            scale = min(scale, 1.0)
        plan = Plan(source, None, (_at_least_one(src_w * scale), _at_least_one(src_h * scale)))
    elif spec.fit == "cover":
        plan = _cover(source, box_w, box_h, spec.upscale)
    elif spec.fit == "fill":
        shrink = 1.0 if spec.upscale else min(1.0, src_w / box_w, src_h / box_h)
        plan = Plan(source, None, (_at_least_one(box_w * shrink), _at_least_one(box_h * shrink)))
    else:
        scale = min(box_w / src_w, box_h / src_h)
        if not spec.upscale:
            scale = min(scale, 1.0)
        resize = (_at_least_one(src_w * scale), _at_least_one(src_h * scale))
        canvas = (box_w, box_h) if spec.fit == "pad" and resize != (box_w, box_h) else None
        plan = Plan(source, None, resize, canvas)

    out_w, out_h = plan.output
    if out_w > max_dimension or out_h > max_dimension:
        raise InvalidSpec(
            "size",
            f"the result would be {out_w}x{out_h}, larger than the limit",
            f"results up to {max_dimension}x{max_dimension}",
        )
    return plan


def _cover(source: tuple[int, int], box_w: int, box_h: int, upscale: bool) -> Plan:
    """Fill the box: crop the source to the box's aspect ratio (centred), then resize."""
    src_w, src_h = source
    scale = max(box_w / src_w, box_h / src_h)
    crop_w, crop_h = box_w / scale, box_h / scale
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    crop = (left, top, left + crop_w, top + crop_h)
    if scale > 1 and not upscale:
        resize = (_at_least_one(crop_w), _at_least_one(crop_h))
    else:
        resize = (box_w, box_h)
    if crop == (0, 0, src_w, src_h):
        crop = None
    return Plan(source, crop, resize)


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
    return Plan(plan.source, plan.crop, resize, canvas)
