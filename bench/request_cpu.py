"""CPU per request through the WSGI handler, in-process: no HTTP, no gunicorn, so two code trees compare closely.

    .venv/bin/python bench/request_cpu.py [--tree DIR] [--runs 40] PATH?QUERY ...

Each request runs Django's handler on a built environ (the result cache off), and
its CPU time (``time.process_time``) is taken; the median of ``--runs`` is printed.
``--tree`` runs another checkout of the project (for example a ``git worktree`` of
an older commit) against the same media, so a change can be measured before and
after in one sitting. Sources are bench/thumbnails.py's, plus a PNG made from its
1920x1080 JPEG.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=PROJECT, help="the checkout whose code runs")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("targets", nargs="+", help="paths with their query, e.g. /1920x1080.png?size=300x200")
    args = parser.parse_args()

    sys.path.insert(0, str(PROJECT))
    from bench import thumbnails

    thumbnails.make_sources()
    png = thumbnails.MEDIA / "1920x1080.png"
    if not png.exists():
        from PIL import Image

        Image.open(thumbnails.MEDIA / "1920x1080.jpg").save(png)

    sys.path.insert(0, str(args.tree.resolve()))
    os.environ.update({"DJANGO_SETTINGS_MODULE": "mediasite.settings", "MEDIA_ROOT": str(thumbnails.MEDIA),
                       "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "TRANSFORMS_CACHE": "0"})
    for name in [name for name in sys.modules if name == "mediasite" or name.startswith("mediasite.")]:
        del sys.modules[name]
    from mediasite.wsgi import application

    def request(target: str) -> None:
        path, _, query = target.partition("?")
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
                   "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "wsgi.input": io.BytesIO(),
                   "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": sys.stderr}
        statuses: list[str] = []
        body = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(body)
        body.close()
        if not statuses[0].startswith("200"):
            sys.exit(f"{target}: {statuses[0]}")

    print(f"code: {args.tree}")
    for target in args.targets:
        request(target)
        samples = []
        for _ in range(args.runs):
            started = time.process_time()
            request(target)
            samples.append(time.process_time() - started)
        print(f"{target}: {1000 * statistics.median(samples):.2f} ms CPU per request (median of {args.runs})")


if __name__ == "__main__":
    main()
