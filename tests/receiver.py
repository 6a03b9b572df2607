"""A real HTTPS webhook receiver on loopback: records every request, answers from a script."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


class Receiver:
    def __init__(self, ca):
        self.requests: list[Received] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()  # answers in order; then 200
        self.mode = "answer"  # "stall": read the request, never answer; "trickle": a byte of status line per 0.2 s
        self.delay = 0.0  # seconds to wait before answering
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def setup(self):
                super().setup()
                # Two writes per response: without this, Nagle + delayed ACK add 40 ms to each.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.mode == "stall":  # a tarpit: the connection stays open, nothing comes back
                    receiver.closing.wait(120)
                    return
                if receiver.mode == "trickle":  # bytes keep coming, the answer never completes
                    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                        if receiver.closing.wait(0.2):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    return
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers = receiver.script.popleft() if receiver.script else (200, {})
                payload = b'{"ok": true}'
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"https://localhost:{self.port}{path}"

    def answer(self, *responses) -> None:
        """Queue answers: a status code, or (status, headers)."""
        for response in responses:
            self.script.append(response if isinstance(response, tuple) else (response, {}))

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
