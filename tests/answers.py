"""Reading what the service answered: the body, a JSON error, pixels at a place, a /metrics scrape."""

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


def scrape(base_url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a /metrics scrape, parsed by prometheus-client: (name, sorted labels) -> value."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(base_url + "/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def machine_samples() -> dict[tuple[str, tuple], float]:
    """The same samples read here from the metrics folder every process of the run writes into, for a
    server whose /metrics cannot answer (it also reads the render tables, which need a migrated database)."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in registry.collect() for sample in family.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that carry ``labels``."""
    return sum(value for (sample, found), value in samples.items()
               if sample == name and all(dict(found).get(k) == v for k, v in labels.items()))
