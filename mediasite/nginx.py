"""The shipped nginx site (deploy/nginx/mediasite.conf) with its ports changed, and a config to run it
in a folder of its own: what the tests and the benchmarks put in front of gunicorn, so both run the
very file a deployment installs.
"""

from __future__ import annotations

import os
from pathlib import Path

SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "mediasite.conf"
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def site(upstream_port: int, listen_port: int) -> str:
    """The shipped site file with gunicorn on ``upstream_port`` and nginx on 127.0.0.1:``listen_port``."""
    text = SITE.read_text()
    for shipped, here in (("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
                          ("listen 80;", f"listen 127.0.0.1:{listen_port};"), ("listen [::]:80;", "")):
        if shipped not in text:
            raise ValueError(f"{SITE} has no {shipped!r} to change")
        text = text.replace(shipped, here)
    return text


def standalone(folder: Path, upstream_port: int, listen_port: int, access_log: bool = True) -> Path:
    """Write nginx.conf (and the site) into ``folder`` for ``nginx -p folder -c folder/nginx.conf``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mediasite.conf").write_text(site(upstream_port, listen_port))
    temp = "".join(f"  {kind}_temp_path {folder / kind};\n" for kind in TEMP_KINDS)
    log = f"access_log {folder / 'access.log'};" if access_log else "access_log off;"
    conf = folder / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # workers may then write the temp folders made here
        + f"worker_processes {os.cpu_count() or 1};\ndaemon off;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\nevents {{ worker_connections 4096; }}\n"
        f"http {{\n  {log}\n{temp}  include {folder / 'mediasite.conf'};\n}}\n"
    )
    return conf
