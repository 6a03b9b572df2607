"""WSGI entry point (`gunicorn wsgi:app`) and the app the `flask` CLI loads."""

import sys

from callnfy_integrations import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:
    # One line naming what is missing, and a non-zero exit: web, worker and scheduler alike.
    sys.exit(f"callnfy-integrations: configuration error: {exc}")
