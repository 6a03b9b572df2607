"""Sending one webhook attempt, under a hard total deadline, from a pool of sender threads.

`requests` bounds each socket operation (connect, each read), not the attempt: a receiver that
trickles a byte every few seconds, or accepts and never answers, would hold a sender for as long
as it likes. Here every socket an attempt uses — a new connection from its first byte (TCP, then
TLS), or a reused keep-alive one — is registered with a watchdog thread; when the attempt's
deadline passes the watchdog shuts the socket down, which ends any blocked read or write at once.
The attempt then ends with "deadline exceeded" (a 2xx status line that arrived in time still
counts as delivered: the receiver accepted it).

Addresses are filtered as before (requests-hardened: resolve once, pin the address, refuse
private, loopback and link-local ones; redirects are never followed), and the pinned address must
also pass the rule hook URLs were subscribed under (`hook_urls.is_public`), so both refuse the same.

Keep-alive connections are pooled per pinned address (and TLS name), one pool shared by every
sender thread: a connection is reused by whichever thread sends next to that address, so a burst
to one receiver costs one TCP+TLS handshake per attempt in flight, not one per thread — nor one per
attempt when the receiver's name resolves to more addresses than a thread's own pools could keep.
A reused connection is only ever one the address check let through, and the watchdog guards it for
the attempt now using it.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
import socket
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import InvalidSchema
from requests.models import PreparedRequest
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError

from ..timestamps import utcnow
from .hook_urls import is_public

CONNECT_TIMEOUT = 5.0
POOLED_ADDRESSES = 256  # keep-alive pools kept per sender (least recently used closed first)
RESPONSE_READ_LIMIT = 64 * 1024
ERROR_MAX = 500
USER_AGENT = "Callnfy-Webhooks/1.0"

log = logging.getLogger(__name__)


# -- the deadline ---------------------------------------------------------------------------------

# Which attempt is using each socket now: a keep-alive socket goes back to the shared pool as its
# answer is read, before its attempt has finished, and another attempt may take it at once. An
# attempt's deadline then shuts down only the sockets it still uses, never the next attempt's.
_users: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_users_lock = threading.Lock()


class _Attempt:
    """One attempt's deadline and the sockets it has used; the watchdog may expire it once."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.sockets: list[socket.socket] = []
        self.expired = False
        self.finished = False
        self.lock = threading.Lock()

    def guard(self, sock: socket.socket) -> None:
        with _users_lock:
            _users[sock] = self
        with self.lock:
            if self.expired:  # the deadline passed before this socket existed
                _shutdown(sock)
            self.sockets.append(sock)

    def expire(self) -> None:
        with self.lock:
            if self.finished:
                return
            self.expired = True
            with _users_lock:
                mine = [sock for sock in self.sockets if _users.get(sock) is self]
            for sock in mine:
                _shutdown(sock)

    def finish(self) -> None:
        with self.lock:
            self.finished = True


def _shutdown(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown, also for an SSLSocket: it ends a blocked recv/send in the
        # sending thread without touching the TLS object that thread is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # not connected yet, or already closed


class Watchdog:
    """One thread for the whole process: expires attempts whose deadline has passed."""

    def __init__(self):
        self._heap: list[tuple[float, int, _Attempt]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        threading.Thread(target=self._run, name="webhook-watchdog", daemon=True).start()

    def watch(self, attempt: _Attempt) -> None:
        with self._wake:
            heapq.heappush(self._heap, (attempt.deadline, next(self._counter), attempt))
            if self._heap[0][2] is attempt:  # it now waits for an earlier deadline (else: no wake-up per attempt)
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, _, attempt = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
            attempt.expire()


_WATCHDOG: Watchdog | None = None
_WATCHDOG_LOCK = threading.Lock()
_local = threading.local()  # the attempt running on this sender thread


def _watchdog() -> Watchdog:
    global _WATCHDOG
    with _WATCHDOG_LOCK:
        if _WATCHDOG is None:
            _WATCHDOG = Watchdog()
        return _WATCHDOG


def _guard_current(sock: socket.socket | None) -> None:
    attempt = getattr(_local, "attempt", None)
    if attempt is not None and sock is not None:
        attempt.guard(sock)


class _GuardedMixin:
    """urllib3 connection hooks: a new socket is guarded as soon as TCP connects (before TLS),
    a reused keep-alive socket when the next request starts on it."""

    def _new_conn(self):
        sock = super()._new_conn()
        _guard_current(sock)
        return sock

    def request(self, *args, **kwargs):
        _guard_current(getattr(self, "sock", None))
        return super().request(*args, **kwargs)


class _GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


def _guarded(adapter_class: type[HTTPAdapter]) -> type[HTTPAdapter]:
    class Guarded(adapter_class):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    return Guarded


class _PublicOnlyAdapter(IPFilterAdapter):
    """requests-hardened's filter (resolve once, pin the address), plus the subscribe-time rule on the
    pinned address: requests-hardened lets the deprecated IPv4-compatible form (::a.b.c.d) through."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if not is_public(ipaddress.ip_address(host_params["host"].strip("[]"))):
            raise InvalidIPAddress(host_params["host"])
        return host_params, pool_kwargs


_GuardedFilterAdapter = _guarded(_PublicOnlyAdapter)
_GuardedPlainAdapter = _guarded(HTTPAdapter)


# -- one attempt ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Result:
    status_code: int | None
    duration_ms: int
    error: str | None
    retry_after: float | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    """A fixed pool of sender threads sharing keep-alive connection pools (one per pinned address).

    Each attempt goes straight to the guarded transport adapter, not through a requests Session: a
    Session's per-request work (merging its settings, its cookie jar both ways) cost about as much CPU
    as the HTTP exchange itself, and a cookie jar would carry one receiver's cookies into another
    account's delivery. Nothing a Session added is wanted here: no redirects are followed (an adapter
    never follows one), no proxies or CA bundles come from the environment, the timeouts are explicit.
    """

    def __init__(self, *, concurrency: int, allow_private: bool, ca_bundle: str | None, timeout: float):
        self.concurrency = concurrency
        self.timeout = timeout
        self._verify = ca_bundle or True
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook-sender")
        self._watchdog = _watchdog()
        # One adapter per scheme for every thread; a pool holds up to one connection per sender.
        self._adapters: dict[str, HTTPAdapter] = {}
        for scheme, https in (("http", False), ("https", True)):
            adapter = _GuardedPlainAdapter() if allow_private else _GuardedFilterAdapter(
                is_https_proto=https, allow_loopback=False)
            adapter.init_poolmanager(POOLED_ADDRESSES, concurrency)
            self._adapters[scheme] = adapter

    def _prepare(self, request: Request) -> tuple[HTTPAdapter, PreparedRequest]:
        prepared = PreparedRequest()
        prepared.prepare_method("POST")
        prepared.prepare_url(request.url, None)
        prepared.prepare_headers({**request.headers, "User-Agent": USER_AGENT})
        prepared.prepare_body(request.body, None)
        adapter = self._adapters.get(urlsplit(prepared.url).scheme)
        if adapter is None:
            raise InvalidSchema(f"no transport for {prepared.url.split(':', 1)[0]!r} URLs")
        return adapter, prepared

    def submit(self, request: Request) -> Future:
        """Start the attempt on a free thread; the future's result is its `Result`."""
        return self._pool.submit(self.send, request)

    def send(self, request: Request) -> Result:
        started = time.monotonic()
        attempt = _Attempt(started + self.timeout)
        _local.attempt = attempt
        self._watchdog.watch(attempt)
        response = None
        status = None
        try:
            adapter, prepared = self._prepare(request)
            response = adapter.send(prepared, stream=True, timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout),
                                    verify=self._verify, proxies={})
            status = response.status_code
            snippet = _read_limited(response, attempt)
            if attempt.expired and not 200 <= status < 300:
                return Result(status, _elapsed_ms(started), self._expired_error(), None)
            error = None if 200 <= status < 300 else f"HTTP {status}: {snippet[:200]}".strip()
            return Result(status, _elapsed_ms(started), error, _retry_after(response))
        except Exception as exc:  # timeouts, refused addresses, TLS failures: all retried
            if status is not None and 200 <= status < 300:
                return Result(status, _elapsed_ms(started), None, None)  # accepted; the body was cut short
            if attempt.expired:
                error = self._expired_error()
            elif isinstance(exc, InvalidIPAddress):  # the address itself is not for the account to see
                error = "InvalidIPAddress: the hook URL's host resolves to a non-public address"
            else:
                error = _failure_text(exc)
            return Result(None, _elapsed_ms(started), error[:ERROR_MAX], None)
        finally:
            attempt.finish()
            _local.attempt = None
            if response is not None:
                response.close()

    def _expired_error(self) -> str:
        return f"deadline exceeded: no complete answer within {self.timeout:g} s"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for adapter in self._adapters.values():
            adapter.close()


def _causes(exc: BaseException | None) -> list[BaseException]:
    """The exception and what it wraps (requests → urllib3's MaxRetryError → its reason → the OSError)."""
    chain: list[BaseException] = []
    while exc is not None and len(chain) < 8 and exc not in chain:
        chain.append(exc)
        reason = getattr(exc, "reason", None)
        wrapped = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        exc = reason if isinstance(reason, BaseException) else wrapped or exc.__cause__ or exc.__context__
    return chain


def _failure_text(exc: Exception) -> str:
    """What the account sees for an attempt that got no answer: a code and a sentence. Not the
    exception's text, which is urllib3's internals (pool reprs, object addresses) and repeats the
    hook URL's path, a credential of the Zap: the log gets the chain of types instead."""
    chain = _causes(exc)
    log.info("webhook attempt got no answer", extra={
        "errors": [type(e).__name__ + (f"[{e.errno}]" if isinstance(e, OSError) and e.errno else "") for e in chain]})
    if any(isinstance(e, (socket.gaierror, NameResolutionError)) for e in chain):
        return "DNS_FAILED: the hook URL's host name could not be resolved"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS_FAILED: the TLS handshake with the hook URL's host failed (certificate or protocol)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "CONNECT_TIMEOUT: the hook URL's host did not accept a connection in time"
    if isinstance(exc, requests.exceptions.Timeout):
        return "READ_TIMEOUT: the hook URL's host stopped answering"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "CONNECTION_FAILED: the connection to the hook URL's host failed or was refused"
    return "SEND_FAILED: the request could not be sent; the details are in the service's logs"


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _read_limited(response: requests.Response, attempt: _Attempt) -> str:
    """At most 64 kB of the body (the watchdog ends a read that outlives the deadline)."""
    received = bytearray()
    try:
        for chunk in response.raw.stream(8192, decode_content=True):
            received.extend(chunk)
            if len(received) >= RESPONSE_READ_LIMIT or attempt.expired:
                break
    except Exception:
        if not attempt.expired:
            raise
    return bytes(received[:RESPONSE_READ_LIMIT]).decode("utf-8", "replace")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
        except (TypeError, ValueError):
            return None
