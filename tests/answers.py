"""Reading what the service answered: the body, a JSON error, pixels at a place."""

from __future__ import annotations

import json

from PIL import Image


def body(response) -> bytes:
    """The whole body of a Django test response, streamed or not, and the response closed
    (which is what ends a pipeline and releases its work slot)."""
    try:
        return b"".join(response.streaming_content) if response.streaming else response.content
    finally:
        response.close()


def json_error(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def corner(image: Image.Image, where: str) -> tuple[int, int, int]:
    """The colour a sixth of the way in from the named corner (``top left``, ``bottom right``...)."""
    w, h = image.size
    x = w // 6 if "left" in where else w - 1 - w // 6
    y = h // 6 if "top" in where else h - 1 - h // 6
    return image.convert("RGB").getpixel((x, y))


def near(colour, expected, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=True))


def refusal(client, url: str, status: int) -> dict:
    """GET ``url``, check it is refused with ``status``, and return the JSON error."""
    response = client.get(url)
    assert response.status_code == status, response.content
    return json_error(response)
