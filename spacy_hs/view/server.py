"""Serving a rendered view over HTTP: one page, on the loopback address by default.

``ViewServer`` is stoppable from any thread (``stop``), and a context manager; ``serve`` in
``spacy_hs.view`` blocks on it until Ctrl-C, as ``displacy.serve`` does.

It holds up against what a local page server meets:

* DNS rebinding: a page of evil.example whose name is made to resolve to 127.0.0.1 can make
  the browser send it requests, but with ``Host: evil.example``. Only the server's own names
  are answered (``allowed_hosts`` adds more); the others get 403. The port is not checked, so
  a forwarded port (``ssh -L 8000:localhost:5000``) still works.
* Clients that send half a request, or read nothing: each connection is closed ``timeout``
  seconds after it was accepted, whatever it is doing.
* Many connections at once: at most ``max_connections`` are served, each on its own thread;
  the ones beyond get 503 at once.
* Clients that go away early: no traceback on the console.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from ..errors import Errors, ServeError
from ..util import utf8_safe

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
MAX_PORT = 65535
# Seconds a connection may stay open, from accept to close.
DEFAULT_TIMEOUT = 10.0
# The longest a connection may stay open: a day. Far beyond it, socket timeouts overflow.
MAX_TIMEOUT = 86_400.0
# Connections served at once (a browser opens about 6 to a host).
DEFAULT_MAX_CONNECTIONS = 32
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: 17\r\n\r\nServer too busy.\n"
)


class ViewServer:
    """An HTTP server for one page: GET / returns it, every other path is 404.

    port: 0 picks a free port; with ``auto_select_port`` a taken port moves on to the next free
        one (the port is bound, not probed, so no other process can take it in between).
    allowed_hosts: names the page may be requested by (the ``Host`` header, without its port),
        besides the server's own: ``host``, localhost, 127.0.0.1 and ::1, and, bound to every
        interface (0.0.0.0 or ::), any IP address and this machine's name. "*" allows any.
    timeout: seconds after which a connection is closed, whatever it is doing.
    max_connections: connections served at once; more get 503 ("try again") at once.
    """

    def __init__(
        self,
        html: str,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        auto_select_port: bool = False,
        allowed_hosts: Iterable[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        limits = _Limits(
            host_names(host, allowed_hosts),
            _check_timeout(timeout),
            _check_max_connections(max_connections),
        )
        body = utf8_safe(html).encode("utf8")
        headers = {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        handler = _handler(body, headers)
        self._httpd = _bind(host, port, auto_select_port, handler, limits)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop`` is called from another one."""
        # The loop wakes at least every poll_interval, and closes connections past their time.
        self._httpd.serve_forever(poll_interval=0.1)

    def start(self) -> ViewServer:
        """Serve in a background (daemon) thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever, name=f"spacy-hs view {self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and every open connection, and wait (at most
        ``timeout`` s) for the serving thread."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ViewServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class HostNames:
    """The names a server answers to, from the ``Host`` header (its port left out)."""

    def __init__(self, names: Iterable[str], *, any_address: bool = False) -> None:
        self.names = frozenset(_bare(name) for name in names) - {""}
        self.any_address = any_address  # any IP address too (bound to every interface)

    def allows(self, header: str | None) -> bool:
        # Browsers always send Host, so a request without one is no rebinding.
        if header is None or "*" in self.names:
            return True
        name = _bare(_strip_port(header.strip()))
        if name in self.names:
            return True
        if self.any_address:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False


def host_names(host: str, allowed_hosts: Iterable[str] = ()) -> HostNames:
    """The names a server bound to ``host`` answers to: its own, the loopback ones, and
    ``allowed_hosts``; bound to every interface, any IP address and this machine's name too."""
    if isinstance(allowed_hosts, str):
        allowed_hosts = [allowed_hosts]
    extra = list(allowed_hosts)
    bad = [name for name in extra if not isinstance(name, str) or not name.strip()]
    if bad:
        raise ServeError(Errors.E726.format(value=bad[0]))
    names = [host, *LOOPBACK_NAMES, *extra]
    wildcard = host in WILDCARD_HOSTS
    if wildcard:
        names.append(socket.gethostname())
    return HostNames(names, any_address=wildcard)


def _bare(name: str) -> str:
    """A host name as compared: lowercase, without IPv6 brackets or a final dot."""
    name = name.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.rstrip(".")


def _strip_port(header: str) -> str:
    if header.startswith("["):  # [::1]:5000
        return header[: header.find("]") + 1] if "]" in header else header
    name, colon, port = header.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        return name
    return header


def _check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ServeError(Errors.E724.format(value=timeout, most=MAX_TIMEOUT))
    if not 0 < timeout <= MAX_TIMEOUT:  # NaN fails too
        raise ServeError(Errors.E724.format(value=timeout, most=MAX_TIMEOUT))
    return float(timeout)


def _check_max_connections(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ServeError(Errors.E725.format(value=value))
    return value


@dataclass(frozen=True)
class _Limits:
    hosts: HostNames
    timeout: float
    max_connections: int


def _bind(
    host: str,
    port: int,
    auto_select_port: bool,
    handler: type[BaseHTTPRequestHandler],
    limits: _Limits,
) -> _Server:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= MAX_PORT:
        raise ServeError(Errors.E720.format(port=port))
    server_class = _IPv6Server if ":" in host else _Server
    candidate = port
    while True:
        try:
            return server_class((host, candidate), handler, limits)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise ServeError(
                    Errors.E721.format(host=host, port=candidate, reason=err)
                ) from None
            if not auto_select_port or candidate == 0:
                raise ServeError(Errors.E722.format(host=host, port=candidate)) from None
            if candidate >= MAX_PORT:
                raise ServeError(Errors.E723.format(host=host, port=port)) from None
            candidate += 1


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them; every connection closed
    ``timeout`` s after it was accepted, by the serving loop (``service_actions``)."""

    daemon_threads = True  # a stalled client never keeps the process alive
    request_queue_size = 128  # the listen backlog: a burst waits there, not in threads

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        limits: _Limits,
    ) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._deadlines: dict[socket.socket, float] = {}
        # Held while a connection is registered, cut or closed, so that no socket is shut
        # down after it was closed (its file descriptor may already be another file's).
        self._lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:
        if not self._slots.acquire(blocking=False):
            _send_quietly(request, BUSY)
            self.shutdown_request(request)
            return
        with self._lock:
            self._deadlines[request] = time.monotonic() + self.limits.timeout
        try:
            super().process_request(request, client_address)
        except BaseException:  # the thread did not start
            self._slots.release()
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def service_actions(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [sock for sock, deadline in self._deadlines.items() if deadline <= now]
            for sock in late:
                del self._deadlines[sock]
                _cut(sock)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(request, None)
        super().shutdown_request(request)

    def server_close(self) -> None:
        # Cut the open connections first: closing waits for their threads.
        with self._lock:
            for sock in self._deadlines:
                _cut(sock)
            self._deadlines.clear()
        super().server_close()

    def handle_error(self, request: socket.socket, client_address: object) -> None:
        # A client that went away, or was cut off at its deadline, is no error of the server.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


def _cut(sock: socket.socket) -> None:
    """Wake the thread blocked on ``sock``: its reads end, its writes fail."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.setblocking(False)  # a few bytes to a fresh socket: never waits
        sock.send(data)
    except OSError:
        pass


def _handler(body: bytes, headers: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class PageHandler(BaseHTTPRequestHandler):
        server: _Server

        def setup(self) -> None:
            # Each read and write waits at most this long; the deadline bounds the whole.
            self.timeout = self.server.limits.timeout
            super().setup()

        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            if not self.server.limits.hosts.allows(self.headers.get("Host")):
                self.send_error(
                    HTTPStatus.FORBIDDEN,
                    "Host not allowed",
                    "This spacy-hs view answers to its own host names only (DNS rebinding "
                    "protection). To reach it by this name, pass allowed_hosts=[name].",
                )
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            self._respond(include_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._respond(include_body=False)

        def _respond(self, include_body: bool) -> None:
            if self.path.split("?", 1)[0] != "/":
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            self.send_response(HTTPStatus.OK)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if include_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # no line per request on the console

    return PageHandler
