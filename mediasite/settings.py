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

# --- transforms: defaults and meaning in transforms/conf.py -------------
# A TRANSFORMS_* setting exists here only when its environment variable is set.
TRANSFORMS_ENVIRONMENT = {
    "TRANSFORMS_SIGNING": str,
    "TRANSFORMS_MAX_DIMENSION": int,
    "TRANSFORMS_MAX_PIXELS": int,
    "TRANSFORMS_MAX_SOURCE_BYTES": int,
    "TRANSFORMS_CONCURRENCY": int,
    "TRANSFORMS_DEADLINE": int,
    "TRANSFORMS_CACHE_CONTROL": str,
    "TRANSFORMS_DEFAULT_ENGINE": str,
    "TRANSFORMS_DEFAULT_QUALITY": int,
    "TRANSFORMS_CONVERT": str,
    "TRANSFORMS_DJPEG": str,
    "TRANSFORMS_CJPEG": str,
    "TRANSFORMS_FFMPEG": str,
    "TRANSFORMS_FFPROBE": str,
    # video and audio
    "TRANSFORMS_MAX_SOURCE_DURATION": int,
    "TRANSFORMS_MAX_VIDEO_PIXELS": int,
    "TRANSFORMS_MAX_OUTPUT_DURATION": int,
    "TRANSFORMS_MAX_GIF_DURATION": int,
    "TRANSFORMS_VIDEO_DEADLINE": int,
    "TRANSFORMS_PROBE_TIMEOUT": int,
    "TRANSFORMS_VIDEO_WEIGHT": int,
    "TRANSFORMS_VIDEO_DEMUXERS": str,
}
for _name, _cast in TRANSFORMS_ENVIRONMENT.items():
    if os.environ.get(_name):
        globals()[_name] = env_int(_name, 0) if _cast is int else _cast(os.environ[_name])
TRANSFORMS_CACHE_DIR = Path(env("TRANSFORMS_CACHE_DIR", str(BASE_DIR / "var" / "cache")))

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
