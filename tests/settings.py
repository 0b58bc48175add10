"""The project's settings for the test run: in-process metrics go to a temporary folder.

prometheus-client picks its folder when Django sets up (django-rq's admin imports it), before
any conftest runs, so the folder is chosen here. gunicorn processes started by the tests
inherit it unless a test gives its own.
"""

import os
import tempfile

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mediasite-test-metrics-")

from mediasite.settings import *  # noqa: E402, F403
