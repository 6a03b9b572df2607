"""Run the Microsoft sandbox: `python -m callnfy_integrations.dev.microsoft_sandbox [--port 5098]`."""

import argparse

from werkzeug.serving import run_simple

from . import CLIENT_ID, create_sandbox_app

parser = argparse.ArgumentParser(description="Local emulator of the Microsoft identity platform and Graph for Callnfy")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5098)
args = parser.parse_args()
print(f"Microsoft sandbox on http://{args.host}:{args.port} (client id: {CLIENT_ID}; authority "
      f"http://{args.host}:{args.port}/common/oauth2/v2.0, Graph http://{args.host}:{args.port}/v1.0)", flush=True)
run_simple(args.host, args.port, create_sandbox_app(), threaded=True)
