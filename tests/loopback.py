"""Small HTTP servers on loopback for tests: a WSGI app (the service, the sandbox, a dashboard) served
in a thread, a page server, and any handler started in a thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from werkzeug.serving import make_server


class WsgiServer:
    """A WSGI app served over real HTTP on an ephemeral loopback port, by werkzeug in a daemon thread.

    `app` may be set after the server starts: an app whose configuration names its own URL (its
    PUBLIC_API_URL, for Google's notifications or the OAuth callback) is built once `url` is known."""

    def __init__(self, app=None):
        self.app = app
        self.server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def _dispatch(self, environ, start_response):
        return self.app(environ, start_response)

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WsgiServer:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def serve_wsgi(app=None) -> WsgiServer:
    """`app` served on loopback (see WsgiServer); call .shutdown() when done, or use it in `with`."""
    return WsgiServer(app)


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
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server
