"""WSGI entry point: ``gunicorn -c mediasite/gunicorn.conf.py mediasite.wsgi``.

Loading the application also probes the transform engines (their tools' versions go into
every ETag), once per worker process, so that no request starts a tool to learn them.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediasite.settings")

application = get_wsgi_application()

from streaming.health import with_liveness  # noqa: E402  (needs the settings loaded above)
from transforms.engines import probe_engines  # noqa: E402

probe_engines()
# GET /healthz is answered here, before Django: any Host, no middleware, no database.
application = with_liveness(application)
