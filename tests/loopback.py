"""Small HTTP servers on loopback for tests: a page server, and any handler started in a thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class PageHandler(QuietHandler):
    """Serves `page(path)` as HTML for every GET."""

    def page(self, path: str) -> bytes:
        raise NotImplementedError

    def do_GET(self):  # noqa: N802 - http.server's naming
        body = self.page(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """`handler` served on an ephemeral loopback port, in a daemon thread; call .shutdown() when done."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
