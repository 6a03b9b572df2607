"""Run the Google sandbox: `python -m callnfy_integrations.dev.google_sandbox [--port 5099]`."""

import argparse

from werkzeug.serving import run_simple

from . import create_sandbox_app

parser = argparse.ArgumentParser(description="Local emulator of Google OAuth and Calendar for Callnfy")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5099)
args = parser.parse_args()
print(f"Google sandbox on http://{args.host}:{args.port} (client id: sandbox-client-id.apps.googleusercontent.com)",
      flush=True)
run_simple(args.host, args.port, create_sandbox_app(), threaded=True)
