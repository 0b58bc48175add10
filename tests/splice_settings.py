"""The project's settings plus test-only streaming views (``tests.splice_urls``), for gunicorn tests."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.splice_urls"
