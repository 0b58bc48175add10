"""Geometry plans, as a table: source size + spec -> crop, resize, canvas."""

import pytest

from transforms.errors import InvalidSpec
from transforms.geometry import plan_for
from transforms.spec import TransformSpec as S

CASES = [
    # source, spec, crop, resize, canvas
    ((1920, 1080), S(), None, (1920, 1080), None),
    ((1920, 1080), S(width=300, height=200), None, (300, 169), None),
    ((1920, 1080), S(width=300, height=200, fit="cover"), (150.0, 0.0, 1770.0, 1080.0), (300, 200), None),
    ((1920, 1080), S(width=300, height=200, fit="fill"), None, (300, 200), None),
    ((1920, 1080), S(width=300, height=200, fit="pad"), None, (300, 169), (300, 200)),
    ((1920, 1080), S(width=300), None, (300, 169), None),
    ((1920, 1080), S(height=120), None, (213, 120), None),
    ((200, 100), S(width=400, height=400), None, (200, 100), None),
    ((200, 100), S(width=400, height=400, upscale=True), None, (400, 200), None),
    ((200, 100), S(width=400, height=400, fit="pad"), None, (200, 100), (400, 400)),
    ((200, 100), S(width=400, height=400, fit="cover"), (50.0, 0.0, 150.0, 100.0), (100, 100), None),
    ((200, 100), S(width=400, height=400, fit="fill"), None, (100, 100), None),
    ((940, 2), S(width=100, height=100), None, (100, 1), None),
    ((1, 1), S(width=300, height=300, fit="cover"), None, (1, 1), None),
]


@pytest.mark.parametrize(("source", "spec", "crop", "resize", "canvas"), CASES)
def test_plans(source, spec, crop, resize, canvas):
    plan = plan_for(source, spec, 4096)
    assert plan.crop == crop
    assert plan.resize == resize
    assert plan.canvas == canvas


def test_cover_crop_keeps_the_box_aspect_ratio():
    plan = plan_for((4000, 3000), S(width=300, height=200, fit="cover"), 4096)
    left, top, right, bottom = plan.crop
    assert (right - left) / (bottom - top) == pytest.approx(1.5)
    assert plan.scale == pytest.approx(300 / 4000)


def test_upscale_beyond_the_output_limit_is_refused():
    with pytest.raises(InvalidSpec) as caught:
        plan_for((940, 2), S(height=4000, upscale=True), 4096)
    assert caught.value.parameter == "size"
