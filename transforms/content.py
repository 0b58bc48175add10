"""What the pixels say about where to crop: ``trim=1`` and ``gravity=smart``.

Both depend on content, so they cannot be in the plan made before decoding; the
engine asks here once it holds the decoded picture (the JPEG drafted to about the
output's scale), and moves or re-plans the crop. Both work on that decoded grid and
answer in the plan's source pixels, so the arithmetic stays in ``geometry``.

- Trim: the bounding box of every pixel that differs from the top-left pixel by more
  than TRANSFORMS_TRIM_TOLERANCE in any channel (alpha included), found by Pillow's
  ``getbbox`` on the difference image.
- Smart: a saliency map on a proxy of at most ``PROXY_SIDE`` pixels a side: edge
  strength (a Laplacian of the luma, where detail is) plus colour saturation (where
  objects usually are, as libvips' ``attention`` weighs them), summed along the axis the
  crop spans, and the crop window with the most of it wins (the centre on a tie, so a
  flat picture crops as gravity=center would). A cover crop always spans its region
  along one axis, so the search is one sliding sum: microseconds on the proxy.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from .geometry import Box, Plan

PROXY_SIDE = 128
SATURATION_WEIGHT = 0.5


def trimmed_region(image: Image.Image, plan: Plan, tolerance: int) -> Box | None:
    """The part of the plan's region with content, in source pixels; None when it is all one colour."""
    scale_x, scale_y = image.width / plan.source[0], image.height / plan.source[1]
    left, top, right, bottom = plan.region or (0, 0, plan.source[0], plan.source[1])
    grid = (round(left * scale_x), round(top * scale_y), round(right * scale_x), round(bottom * scale_y))
    part = image.crop(grid)
    if part.mode not in ("RGB", "RGBA", "L"):
        part = part.convert("RGBA")
    border = Image.new(part.mode, part.size, part.getpixel((0, 0)))
    difference = ImageChops.difference(part, border)
    if difference.mode != "L":
        channels = difference.split()
        difference = channels[0]
        for channel in channels[1:]:
            difference = ImageChops.lighter(difference, channel)
    box = difference.point(lambda value: 255 if value > tolerance else 0).getbbox()
    if box is None:
        return None
    return (
        left + box[0] / scale_x,
        top + box[1] / scale_y,
        left + box[2] / scale_x,
        top + box[3] / scale_y,
    )


def saliency(image: Image.Image) -> np.ndarray:
    """Per-pixel interest: edge strength of the luma plus weighted saturation, as floats."""
    rgb = image.convert("RGB")
    edges = np.asarray(rgb.convert("L").filter(ImageFilter.FIND_EDGES), dtype=np.float32)
    saturation = np.asarray(rgb.convert("HSV").getchannel("S"), dtype=np.float32)
    return edges + SATURATION_WEIGHT * saturation


def smart_plan(image: Image.Image, plan: Plan) -> Plan:
    """The plan with its crop box moved to the most salient window of its region."""
    if plan.crop is None:
        return plan
    scale_x, scale_y = image.width / plan.source[0], image.height / plan.source[1]
    left, top, right, bottom = plan.region or (0, 0, plan.source[0], plan.source[1])
    part = image.crop((round(left * scale_x), round(top * scale_y), round(right * scale_x), round(bottom * scale_y)))
    shrink = min(1.0, PROXY_SIDE / max(part.size))
    proxy_size = (max(1, round(part.width * shrink)), max(1, round(part.height * shrink)))
    proxy = part.resize(proxy_size, Image.Resampling.BILINEAR, reducing_gap=2.0) if shrink < 1 else part
    interest = saliency(proxy)
    # proxy pixels per source pixel, along each axis
    per_x, per_y = proxy.width / (right - left), proxy.height / (bottom - top)
    kept_w, kept_h = plan.kept
    if kept_w < right - left - 1e-6:  # the window slides left-right
        start = best_window(interest.sum(axis=0), kept_w * per_x)
        return plan.moved_to(left + start / per_x, plan.crop[1])
    start = best_window(interest.sum(axis=1), kept_h * per_y)
    return plan.moved_to(plan.crop[0], top + start / per_y)


def best_window(profile: np.ndarray, width: float) -> float:
    """Start (in profile cells) of the ``width``-cell window with the largest sum; the centre on a tie."""
    cells = len(profile)
    span = min(cells, max(1, round(width)))
    sums = np.convolve(profile, np.ones(span, dtype=np.float32), mode="valid")
    if len(sums) <= 1:
        return 0.0
    centre = (cells - span) / 2
    positions = np.arange(len(sums))
    bias = 1e-3 * (float(sums.max()) + 1.0) * np.abs(positions - centre) / max(centre, 1.0)
    start = int(np.argmax(sums - bias))
    # the exact window may be a fraction of a cell wider or narrower: spread that evenly
    return start * (cells - width) / (cells - span) if cells != span else start
