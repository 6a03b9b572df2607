"""A real HTTPS webhook receiver on loopback: records every request, answers from a script.

Modes: "answer" (the script, then 200), "stall" (never answers), "trickle" (a byte of status line
per 0.2 s), and "chaos": each request fails with probability `chaos_rate` — 500/502/503, 429 with
`Retry-After: 1`, a stall of `chaos_stall` seconds that ends with the connection closed unanswered,
or a 200 sent only after `chaos_stall` seconds (later than the sender waits) — and is otherwise
answered as in "answer". With `keys` (path → API key) every request to that path is verified as
Zapier would (`standardwebhooks`); a bad signature is answered 401 and counted.
"""

from __future__ import annotations

import random
import socket
import ssl
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHAOS_FAULTS = ("500", "502", "503", "429", "stall", "late")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], OSError):
            return  # the sender hung up (its deadline): expected in the stall, trickle and chaos modes
        super().handle_error(request, client_address)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)
    status: int | None = None  # what was (or was to be) answered; None: no answer


class Receiver:
    def __init__(self, ca):
        self.requests: list[Received] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()  # answers in order; then 200
        self.mode = "answer"  # "stall": read the request, never answer; "trickle": a byte of status line per 0.2 s
        self.delay = 0.0  # seconds to wait before answering
        self.keys: dict[str, str] = {}  # path -> API key: requests to it are signature-checked
        self.accepted: list[Received] = []  # processed (verified, answered 2xx, though the answer may be lost)
        self.bad_signatures = 0
        self.chaos_rate = 0.0
        self.chaos_stall = 3.0
        self.chaos_faults: tuple[str, ...] = CHAOS_FAULTS
        self.injected: Counter = Counter()  # chaos fault -> how many times it was injected
        self.connections = 0  # TCP connections accepted (a keep-alive connection serves many requests)
        self.random = random.Random(7)
        self.lock = threading.Lock()
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def setup(self):
                super().setup()
                # Two writes per response: without this, Nagle + delayed ACK add 40 ms to each.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                receiver.requests.append(received)
                key = receiver.keys.get(self.path)
                if key is not None and not receiver.verified(key, received):
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self.reply(received, 401)
                    return
                if receiver.mode == "chaos":
                    fault = receiver.chaos_fault()
                    if fault in ("500", "502", "503"):
                        self.reply(received, int(fault))
                        return
                    if fault == "429":
                        self.reply(received, 429, {"Retry-After": "1"})
                        return
                    if fault == "stall":  # nothing comes back; then the connection is dropped
                        receiver.closing.wait(receiver.chaos_stall)
                        self.close_connection = True
                        return
                    if fault == "late":  # processed, but answered after the sender has given up
                        receiver.closing.wait(receiver.chaos_stall)
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
                self.reply(received, status, headers)

            def reply(self, received, status, headers=None):
                received.status = status
                if 200 <= status < 300:  # processed, as Zapier would, even if the answer is then lost
                    with receiver.lock:
                        receiver.accepted.append(received)
                payload = b'{"ok": true}'
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"https://localhost:{self.port}{path}"

    def verified(self, key: str, received: Received) -> bool:
        from standardwebhooks import Webhook
        from standardwebhooks.webhooks import WebhookVerificationError

        try:
            Webhook(key.encode()).verify(received.body, received.headers)
        except WebhookVerificationError:
            return False
        return True

    def chaos_fault(self) -> str | None:
        """The fault to inject into this request, or None (answer normally)."""
        with self.lock:
            if self.random.random() >= self.chaos_rate:
                return None
            fault = self.random.choice(self.chaos_faults)
            self.injected[fault] += 1
            return fault

    def answer(self, *responses) -> None:
        """Queue answers: a status code, or (status, headers)."""
        for response in responses:
            self.script.append(response if isinstance(response, tuple) else (response, {}))

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
