"""EXIF orientation, ``rotate`` and ``flip`` as one of the eight orientations of a rectangle.

Every engine already knows how to apply an EXIF orientation (1-8) to the stored pixels
in one step (Pillow's ``transpose``, ``pamflip``, ``-auto-orient``). ``rotate=90`` and
``flip=h`` after it are just more of the same group, so they are composed here with the
file's orientation into the one orientation an engine applies: no engine rotates twice,
and the geometry plan is computed once on the picture as it will be shown.
"""

from __future__ import annotations

Matrix = tuple[int, int, int, int]  # (a, b, c, d): (x, y) -> (a*x + b*y, c*x + d*y), y pointing down

# EXIF orientation -> what it does to the stored picture to show it upright.
MATRICES: dict[int, Matrix] = {
    1: (1, 0, 0, 1),  # as stored
    2: (-1, 0, 0, 1),  # mirrored left-right
    3: (-1, 0, 0, -1),  # turned 180 degrees
    4: (1, 0, 0, -1),  # mirrored top-bottom
    5: (0, 1, 1, 0),  # transposed (mirrored about the top-left to bottom-right diagonal)
    6: (0, -1, 1, 0),  # turned 90 degrees clockwise
    7: (0, -1, -1, 0),  # transversed
    8: (0, 1, -1, 0),  # turned 90 degrees counter-clockwise
}
ORIENTATIONS = {matrix: orientation for orientation, matrix in MATRICES.items()}
ROTATIONS = {0: 1, 90: 6, 180: 3, 270: 8}
FLIPS = {None: 1, "h": 2, "v": 4, "hv": 3}
TRANSPOSING = frozenset({5, 6, 7, 8})


def _then(first: Matrix, second: Matrix) -> Matrix:
    """The matrix of applying ``first`` and then ``second``."""
    a, b, c, d = second
    e, f, g, h = first
    return (a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h)


def compose(exif: int, rotate: int = 0, flip: str | None = None) -> int:
    """The orientation that shows a picture stored with EXIF ``exif``, turned ``rotate`` degrees, then flipped."""
    matrix = _then(_then(MATRICES[exif], MATRICES[ROTATIONS[rotate]]), MATRICES[FLIPS[flip]])
    return ORIENTATIONS[matrix]


def shown_size(stored: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The size of a picture stored as ``stored`` once ``orientation`` is applied."""
    return (stored[1], stored[0]) if orientation in TRANSPOSING else stored
