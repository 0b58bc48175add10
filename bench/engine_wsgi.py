"""A five-line WSGI app for bench/thumbnail_overhead.py: the Pillow engine's work alone under gunicorn.

``/engine`` renders the benchmark's 1920x1080 -> 300x200 job with the engine
call the in-process ceiling times (no Django, no view, no probe per request);
``/stub`` answers the same bytes from memory. So the two show what gunicorn and
its threads add to a thumbnail, apart from Django and the view.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediasite.settings")
django.setup()

from transforms.engines import ENGINES, ImageJob  # noqa: E402
from transforms.geometry import plan_for  # noqa: E402
from transforms.sources import probe_image, resolve  # noqa: E402
from transforms.spec import parse_query  # noqa: E402

ENGINE = ENGINES["pillow"]
SOURCE = resolve(os.environ.get("BENCH_SOURCE", "1920x1080.jpg"))
INFO = probe_image(SOURCE)
JOB = ImageJob(SOURCE, INFO, plan_for((INFO.width, INFO.height), parse_query({"size": ["300x200"]}), 4096),
               "jpeg", 85, "ffffff")


def render() -> bytes:
    return ENGINE.render(JOB, deadline=30, on_close=lambda: None)


STUB = render()


def application(environ, start_response):
    body = STUB if environ["PATH_INFO"] == "/stub" else render()
    start_response("200 OK", [("Content-Type", "image/jpeg"), ("Content-Length", str(len(body)))])
    return [body]
