"""A five-line WSGI app for bench/thumbnail_overhead.py: the Pillow engine's work alone under gunicorn.

``/engine`` renders the benchmark's 1920x1080 -> 300x200 job with the engine
call the in-process ceiling times (no Django, no view, no probe per request);
``/stub`` answers the same bytes from memory. So the two show what gunicorn and
its threads add to a thumbnail, apart from Django and the view.
"""

from bench.thumbnails import thumbnail_job

JOB = thumbnail_job("1920x1080", "contain")  # sets Django up first

from transforms.engines import ENGINES  # noqa: E402

ENGINE = ENGINES["pillow"]


def render() -> bytes:
    return ENGINE.render(JOB, deadline=30, on_close=lambda: None)


STUB = render()


def application(environ, start_response):
    body = STUB if environ["PATH_INFO"] == "/stub" else render()
    start_response("200 OK", [("Content-Type", "image/jpeg"), ("Content-Length", str(len(body)))])
    return [body]
