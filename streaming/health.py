"""Liveness, readiness and the metrics endpoint: what a load balancer and Prometheus ask.

- ``/healthz``: answered by ``with_liveness`` in front of Django (any Host, no middleware,
  no database, no Redis): 200 while the worker can answer at all.
- ``/readyz``: every registered check (Redis, the database, MEDIA_ROOT, the engines'
  tools; apps add theirs with ``register_check``) run side by side under one short
  timeout, each reported with its state and how long it took; 200 when all pass, else 503.
- ``/metrics``: the Prometheus text format (``streaming.metrics``).

``/readyz`` and ``/metrics`` say more about the deployment than a stranger should know:
only clients in METRICS_ALLOWED_IPS or with ``Authorization: Bearer <METRICS_TOKEN>`` get
them. Behind a proxy the client is the last address the proxy added to X-Forwarded-For
(when the peer is in METRICS_TRUSTED_PROXIES), so a request relayed by nginx from outside
is not mistaken for a local one.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from .conf import metrics_conf
from .errors import HttpError, json_errors

LIVENESS_PATH = "/healthz"
CHECK_THREADS = 4

_checks: dict[str, Callable[[], str]] = {}
_collectors: list[Callable[[], Iterable[Any]]] = []
_pool = ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="readyz")


class NotAllowed(HttpError, status=403, code="forbidden"):
    """The client is neither in METRICS_ALLOWED_IPS nor sent the metrics token."""


def register_check(name: str, check: Callable[[], str]) -> None:
    """``check()`` returns a short detail when the dependency is usable and raises when it is not."""
    _checks[name] = check


def register_collector(collect: Callable[[], Iterable[Any]]) -> None:
    """Add samples read at scrape time: ``collect()`` yields prometheus-client metric families."""
    if collect not in _collectors:
        _collectors.append(collect)


def collectors() -> list[Callable[[], Iterable[Any]]]:
    return list(_collectors)


def with_liveness(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI ``app`` with ``GET /healthz`` answered before it (nothing below is touched)."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == LIVENESS_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            body = b'{"status": "ok"}'
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                      ("Cache-Control", "no-store")])
            return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]
        return app(environ, start_response)

    return application


def client_address(request: HttpRequest) -> str:
    """The client's address: the peer, or what a trusted proxy in front says the peer was."""
    peer = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and in_networks(peer, metrics_conf.TRUSTED_PROXIES):
        return forwarded.split(",")[-1].strip()
    return peer


def in_networks(address: str, networks: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net.strip(), strict=False) for net in networks.split(",") if net.strip())


def require_operator(request: HttpRequest) -> None:
    token = str(metrics_conf.TOKEN)
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return
    if not in_networks(client_address(request), metrics_conf.ALLOWED_IPS):
        raise NotAllowed("this endpoint is for the operators' addresses (METRICS_ALLOWED_IPS) or token")


_redis_clients: dict[str, Any] = {}


def redis_ready() -> str:
    """Redis (cache, render queue, camera relay) answers a PING."""
    import redis
    from django.conf import settings

    url = settings.REDIS_URL
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    client.ping()
    return "PONG"


def run_checks(timeout: float) -> dict[str, dict[str, Any]]:
    """Every check at once; one that has not answered within ``timeout`` counts as failed."""
    started = time.monotonic()

    def timed(check: Callable[[], str]) -> dict[str, Any]:
        begun = time.monotonic()
        try:
            detail, ok = check(), True
        except Exception as exc:  # a check reports any failure of its dependency, whatever its type
            detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
        return {"ok": ok, "detail": detail, "seconds": round(time.monotonic() - begun, 4)}

    futures = {name: _pool.submit(timed, check) for name, check in _checks.items()}
    wait(futures.values(), timeout=timeout)
    results = {}
    for name, future in futures.items():
        if future.done():
            results[name] = future.result()
        else:
            future.cancel()
            results[name] = {"ok": False, "detail": f"no answer within {timeout:g} s",
                             "seconds": round(time.monotonic() - started, 4)}
    return results


@require_safe
@json_errors
def readyz(request: HttpRequest) -> HttpResponse:
    require_operator(request)
    checks = run_checks(float(metrics_conf.READY_TIMEOUT))
    ready = all(result["ok"] for result in checks.values())
    failing = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "ready" if ready else "unready", "failing": failing, "checks": checks}
    return JsonResponse(body, status=200 if ready else 503, headers={"Cache-Control": "no-store"})


@require_safe
@json_errors
def metrics(request: HttpRequest) -> HttpResponse:
    from .metrics import exposition

    require_operator(request)
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})
