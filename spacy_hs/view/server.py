"""Serving a rendered view over HTTP: one page, on the loopback address by default.

``ViewServer`` is stoppable from any thread (``stop``), and a context manager; ``serve`` in
``spacy_hs.view`` blocks on it until Ctrl-C, as ``displacy.serve`` does.
"""

from __future__ import annotations

import errno
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from ..errors import Errors, ServeError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
MAX_PORT = 65535


class ViewServer:
    """An HTTP server for one page: GET / returns it, every other path is 404.

    port 0 picks a free port; with ``auto_select_port`` a taken port moves on to the next free
    one (the port is bound, not probed, so no other process can take it in between).
    """

    def __init__(
        self,
        html: str,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        auto_select_port: bool = False,
    ) -> None:
        body = html.encode("utf8")
        headers = {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        handler = _handler(body, headers)
        self._httpd = _bind(host, port, auto_select_port, handler)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop`` is called from another one."""
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
        """Stop serving, close the socket and wait (at most ``timeout`` s) for the thread."""
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


def _bind(
    host: str, port: int, auto_select_port: bool, handler: type[BaseHTTPRequestHandler]
) -> ThreadingHTTPServer:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= MAX_PORT:
        raise ServeError(Errors.E720.format(port=port))
    server_class = _IPv6Server if ":" in host else _Server
    candidate = port
    while True:
        try:
            return server_class((host, candidate), handler)
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
    daemon_threads = True  # a stalled client never keeps the process alive


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


def _handler(body: bytes, headers: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class PageHandler(BaseHTTPRequestHandler):
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
