"""Django settings for mediasite.

Every value a deployment changes is read from the environment here, once, with a
default that works on a laptop (SQLite, a local ``media/`` folder, Redis on
localhost). Defaults for the transform options live in ``transforms/conf.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

from streaming.cameras.conf import conf as cameras_conf
from streaming.conf import conf as streaming_conf
from transforms.conf import conf as transforms_conf

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


def database_from_url(url: str) -> dict:
    """Translate DATABASE_URL (sqlite:///path or postgres://...) into Django's dict."""
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "var" / "db.sqlite3"}
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.path or ":memory:"}
    if parsed.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.path.lstrip("/"),
            "USER": parsed.username or "",
            "PASSWORD": parsed.password or "",
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
        }
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parsed.scheme!r} is not supported")


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env("DJANGO_SECRET_KEY") or "insecure-development-key-change-me"
ALLOWED_HOSTS = [h for h in env("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]

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

DATABASES = {"default": database_from_url(env("DATABASE_URL"))}
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
TRANSFORMS_CACHE_DIR = Path(env("TRANSFORMS_CACHE_DIR", str(BASE_DIR / "var" / "cache")))
if env("STREAMING_SPLICE", "auto") not in ("auto", "os", "ctypes", "off"):
    raise ImproperlyConfigured(f"STREAMING_SPLICE must be auto, os, ctypes or off, got {env('STREAMING_SPLICE')!r}")

# --- render jobs (MoviePy on django-rq): meaning in README "Video renders" ---
# The rq queues live in the same Redis as the cache. Jobs are enqueued by
# transforms.jobs with an id chosen first, so no commit-mode deferral applies.
RENDER_QUEUE = env("RENDER_QUEUE", "renders")
RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 360},
    RENDER_QUEUE: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}
RQ = {"COMMIT_MODE": "auto"}
# Seconds a render may run before rq stops it, and how often a failed render is retried.
RENDER_JOB_TIMEOUT = env_int("RENDER_JOB_TIMEOUT", 1800)
RENDER_RETRIES = env_int("RENDER_RETRIES", 0)
RENDER_RETRY_INTERVAL = env_int("RENDER_RETRY_INTERVAL", 30)
# A render whose worker has not said it is alive for this many seconds is abandoned (failed).
RENDER_HEARTBEAT_TIMEOUT = env_int("RENDER_HEARTBEAT_TIMEOUT", 15)
# Seconds between comment lines on an idle event stream (keeps proxies from cutting it).
RENDER_SSE_HEARTBEAT = env_float("RENDER_SSE_HEARTBEAT", 15.0)
# Shortest gap, in seconds, between two progress writes to the cache.
RENDER_PROGRESS_INTERVAL = env_float("RENDER_PROGRESS_INTERVAL", 0.25)
# The font file title cards are drawn with.
RENDER_FONT = env("RENDER_FONT", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# x264 speed/size trade-off for mp4 renders, and ffmpeg threads per render (0: ffmpeg decides).
RENDER_X264_PRESET = env("RENDER_X264_PRESET", "veryfast")
RENDER_THREADS = env_int("RENDER_THREADS", 0)
# Limits a recipe must stay inside.
RENDER_MAX_DIMENSION = env_int("RENDER_MAX_DIMENSION", 3840)
RENDER_MAX_FPS = env_int("RENDER_MAX_FPS", 60)
RENDER_MAX_SECONDS = env_int("RENDER_MAX_SECONDS", 600)
RENDER_MAX_CLIPS = env_int("RENDER_MAX_CLIPS", 100)
# A shared secret for API clients that have no staff session ("Authorization: Bearer <token>"); empty: off.
RENDER_API_TOKEN = env("RENDER_API_TOKEN")

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
