"""A keep-alive HTTPS receiver for benches: answers 200, records (webhook-id, arrival time) in Redis.
A path starting with /stall is a tarpit: the request is read, and no answer ever comes.

    python bench/https_receiver.py PORT CERT_PEM KEY_PEM REDIS_URL
"""

import socket
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from redis import Redis

port, cert, key, redis_url = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
redis = Redis.from_url(redis_url)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        arrived = time.time()
        if self.path.startswith("/stall"):
            redis.incr("bench:stalled")
            time.sleep(3600)
            return
        webhook_id = self.headers.get("webhook-id")
        if webhook_id:
            redis.rpush("bench:received", f"{webhook_id} {arrived}")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 1024
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
