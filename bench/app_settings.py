"""The project's settings with the benchmark's extra views (``bench.app_urls``)."""

from mediasite.settings import *  # noqa: F403

ROOT_URLCONF = "bench.app_urls"
