"""WSGI entry point: ``gunicorn -c mediasite/gunicorn.conf.py mediasite.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediasite.settings")

application = get_wsgi_application()
