"""A minimal WSGI app for bench/cache_hits.py: one file's bytes from memory, no Django.

It shows what gunicorn itself costs per request on this machine, the floor under any
Django view: ``gunicorn -c mediasite/gunicorn.conf.py bench.static_wsgi`` with
BENCH_STATIC_FILE naming the file (read once at import).
"""

import os

with open(os.environ["BENCH_STATIC_FILE"], "rb") as _file:
    BODY = _file.read()
HEADERS = [("Content-Type", "image/jpeg"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
