"""Django settings for mediasite.

Every value a deployment changes is read from the environment here, once, with a
default that works on a laptop (SQLite, a local ``media/`` folder, Redis on
localhost). Defaults for the transform options live in ``transforms/conf.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from streaming.cameras.conf import conf as cameras_conf
from streaming.conf import conf as streaming_conf
from streaming.conf import metrics_conf
from transforms.conf import conf as transforms_conf
from transforms.renders.conf import DEFAULTS as render_defaults
from transforms.renders.conf import conf as render_conf

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEVELOPMENT_KEY = "insecure-development-key-change-me"


def secret_key(debug: bool) -> str:
    """DJANGO_SECRET_KEY, else the file DJANGO_SECRET_KEY_FILE names (default ``var/secret_key``,
    which ``mediasite/bin/install`` creates with a random key); with DEBUG off, nothing else.

    A key in the repository would let anyone forge signed media URLs and sessions, so with
    DEBUG off a missing key, or the development one, stops the service from starting.
    """
    key = env("DJANGO_SECRET_KEY")
    key_file = Path(env("DJANGO_SECRET_KEY_FILE", str(BASE_DIR / "var" / "secret_key")))
    if not key and key_file.is_file():
        key = key_file.read_text().strip()
    if key and key != DEVELOPMENT_KEY:
        return key
    if debug:
        return DEVELOPMENT_KEY
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set (nor DJANGO_SECRET_KEY_FILE, nor var/secret_key) or is the development "
        "key: set a long random value, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(50))', "
        "or run with DJANGO_DEBUG=1 on a laptop"
    )


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = secret_key(DEBUG)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# Origins that may POST (the admin, the render API with a session) when the site is not reached
# at the Host it sees, e.g. behind a TLS proxy: "https://media.example.com".
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# Behind a proxy that ends TLS (DJANGO_HTTPS=1): trust its X-Forwarded-Proto (the proxy must set
# it, and overwrite one from the client), and send cookies and HSTS for HTTPS only.
HTTPS = env_bool("DJANGO_HTTPS", False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    # The proxy (or a load balancer's plain-HTTP health check) reaches these without TLS.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "streaming",
    "transforms",
    "django_rq",
]

MIDDLEWARE = [
    "streaming.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mediasite.urls"
WSGI_APPLICATION = "mediasite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE_URL, e.g. postgres://mediasite:secret@db.example/mediasite (psycopg 3); SQLite when unset.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "mediasite",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT")) if env("STATIC_ROOT") else None
# WhiteNoise serves the admin's static files straight from the apps, no collectstatic step.
WHITENOISE_USE_FINDERS = True

# The media served by the transform views. MEDIA_URL is "/" because every path
# under the site root that no other view claims is a media path.
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "/"

# --- transforms and streaming: defaults and meaning in transforms/conf.py and streaming/conf.py ---
# A TRANSFORMS_* or STREAMING_* setting exists here only when its environment variable is set,
# cast to the type of its default in that table.
globals().update(transforms_conf.from_environment(os.environ))
globals().update(streaming_conf.from_environment(os.environ))
globals().update(metrics_conf.from_environment(os.environ))
# prometheus-client's multiprocess folder (streaming/metrics.py). It must exist and be in the
# environment before that library is first imported, in every process: django-rq's admin
# imports it while Django sets up.
os.makedirs(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(BASE_DIR / "var" / "metrics")), exist_ok=True)
TRANSFORMS_CACHE_DIR = Path(env("TRANSFORMS_CACHE_DIR", str(BASE_DIR / "var" / "cache")))
if env("STREAMING_SPLICE", "auto") not in ("auto", "os", "ctypes", "off"):
    raise ImproperlyConfigured(f"STREAMING_SPLICE must be auto, os, ctypes or off, got {env('STREAMING_SPLICE')!r}")

# --- render jobs (MoviePy on django-rq): defaults and meaning in transforms/renders/conf.py ---
# A RENDER_* setting exists here only when its environment variable is set, except
# RENDER_QUEUE: RQ_QUEUES names the queue, so it is always set, from the same table.
globals().update(render_conf.from_environment(os.environ))
RENDER_QUEUE = render_conf.from_environment(os.environ).get("RENDER_QUEUE", render_defaults["QUEUE"])
# The rq queues live in the same Redis as the cache. Renders go to "default" unless RENDER_QUEUE
# says otherwise, so a bare `manage.py rqworker` takes them. Jobs are enqueued by
# transforms.renders with an id chosen first, so no commit-mode deferral applies.
RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600}}
RQ_QUEUES.setdefault(RENDER_QUEUE, {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600})
# Every `manage.py rqworker` is a RenderWorker: MoviePy loaded before the fork, and it waits
# through Redis outages instead of quitting (transforms/renders/worker.py).
RQ = {"COMMIT_MODE": "auto", "WORKER_CLASS": "transforms.renders.worker.RenderWorker"}

# --- cameras (streaming/cameras): MJPEG pages fed by one producer per camera -----------
# Defaults and meaning in streaming/cameras/conf.py; a CAMERAS* setting exists here only when
# its environment variable is set, cast to the type of its default in that table.
globals().update(cameras_conf.from_environment(os.environ))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "transforms": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
        "streaming": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    },
}
