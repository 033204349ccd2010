"""The view's HTTP server (spacy_hs.view.server) under hostile clients, with real sockets on
127.0.0.1 only: DNS rebinding (a foreign Host header), half-sent requests, a flood of
connections, clients that go away mid-response. Every wait has a generous bound, and every
socket is closed at the end whatever happens."""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from spacy_hs.errors import ServeError
from spacy_hs.view.server import ViewServer, host_names

PAGE = "<!DOCTYPE html><p>the view</p>"
HALF_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"  # never finished
# Generous bounds: these wait for things that take well under a second.
WAIT = 30.0


def get(server: ViewServer, host: str | None) -> tuple[int, bytes]:
    """(status, body) of GET / with this Host header (None: none at all)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        connection.putrequest("GET", "/", skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until(condition, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


@contextmanager
def sockets(n: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        opened = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.settimeout(WAIT)
            opened.append(sock)
        yield opened


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Read until the server closes the connection (True) or the deadline passes (False)."""
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            if not sock.recv(65536):
                return True
        except ConnectionError:
            return True  # reset: closed as well
        except TimeoutError:
            return False


# -- DNS rebinding ----------------------------------------------------------------------------


def test_only_the_servers_own_names_are_answered() -> None:
    with ViewServer(PAGE, port=0) as server:
        port = server.port
        for host in (
            "127.0.0.1",
            f"127.0.0.1:{port}",
            "localhost",
            f"LocalHost:{port}",
            "localhost.",
            f"[::1]:{port}",
            "[::1]",
            None,
        ):
            assert get(server, host) == (200, PAGE.encode()), host
        # A rebinding attacker's page: the browser sends the attacker's name.
        for host in (
            f"evil.example:{port}",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "",
            "10.1.2.3",
            f"[::2]:{port}",
        ):
            status, body = get(server, host)
            assert status == 403, host
            assert b"Host not allowed" in body and len(body) < 1000
            assert b"evil" not in body  # the header is not echoed


def test_allowed_hosts_adds_names() -> None:
    with ViewServer(PAGE, port=0, allowed_hosts=["MyHost.lan"]) as server:
        assert get(server, f"myhost.lan:{server.port}")[0] == 200
        assert get(server, "localhost")[0] == 200
        assert get(server, "other.lan")[0] == 403
    with ViewServer(PAGE, port=0, allowed_hosts="*") as server:
        assert get(server, "anything.example")[0] == 200
    with pytest.raises(ServeError, match=r"\[E726\]"):
        ViewServer(PAGE, port=0, allowed_hosts=["", "x"])


def test_every_interface_also_answers_ip_addresses() -> None:
    """Bound to 0.0.0.0, other machines reach the server by this machine's address or name
    (no rebinding needs a literal address); still not by a foreign name. Only the rule is
    tested: the tests bind nothing but 127.0.0.1."""
    names = host_names("0.0.0.0")
    assert names.allows("192.168.1.20:5000") and names.allows("[fe80::1]:5000")
    assert names.allows(socket.gethostname()) and names.allows("localhost")
    assert not names.allows("evil.example:5000")
    assert not host_names("127.0.0.1").allows("192.168.1.20")
    assert host_names("192.168.1.20").allows("192.168.1.20:5000")


# -- slow, many and vanishing clients ---------------------------------------------------------


def test_half_sent_requests_are_closed_and_threads_stay_bounded(capfd) -> None:
    """200 connections that send half a request and wait: at most max_connections threads
    serve them, the rest get 503 at once, every one is closed within its timeout, and the
    server then serves as before."""
    before = threading.active_count()
    with ViewServer(PAGE, port=0, timeout=1.0, max_connections=8) as server:
        with sockets(200) as clients:
            for sock in clients:
                sock.connect(("127.0.0.1", server.port))
                try:
                    sock.sendall(HALF_REQUEST)
                except ConnectionError:
                    pass  # refused (503) and closed already
            # 1 serving thread + at most 8 handlers, however many connections are open.
            most = 0
            for _ in range(10):
                most = max(most, threading.active_count() - before)
                time.sleep(0.05)
            assert most <= 1 + 8, most
            deadline = time.monotonic() + WAIT
            still_open = [sock for sock in clients if not closed_by_server(sock, deadline)]
            assert not still_open, f"{len(still_open)} connections never closed"
        wait_until(lambda: threading.active_count() <= before + 1, "handler threads to end")
        assert get(server, "127.0.0.1") == (200, PAGE.encode())
    assert "Traceback" not in capfd.readouterr().err


def test_a_busy_server_says_so() -> None:
    before = threading.active_count()
    with ViewServer(PAGE, port=0, timeout=WAIT, max_connections=2) as server:
        with sockets(3) as clients:
            for sock in clients[:2]:
                sock.connect(("127.0.0.1", server.port))
                sock.sendall(HALF_REQUEST)
            wait_until(lambda: threading.active_count() >= before + 3, "two handler threads")
            clients[2].connect(("127.0.0.1", server.port))
            clients[2].sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            reply = b""
            try:
                while chunk := clients[2].recv(4096):
                    reply += chunk
            except ConnectionResetError:
                pass  # the status line may be lost to a reset; the refusal is what counts
            assert reply == b"" or reply.startswith(b"HTTP/1.0 503"), reply


def test_stop_does_not_wait_for_stalled_clients() -> None:
    server = ViewServer(PAGE, port=0, timeout=120).start()
    try:
        with sockets(3) as clients:
            for sock in clients:
                sock.connect(("127.0.0.1", server.port))
                sock.sendall(HALF_REQUEST)
            wait_until(lambda: get(server, "127.0.0.1")[0] == 200, "the server to answer")
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < WAIT / 2  # not the 120 s of the timeout
            deadline = time.monotonic() + WAIT
            assert all(closed_by_server(sock, deadline) for sock in clients)
    finally:
        server.stop()


def test_settings_are_validated() -> None:
    # Far-off timeouts overflowed on every request (OverflowError printed per connection).
    for bad in (0, -1, float("nan"), "10", True, float("inf"), 1e10, 86_401):
        with pytest.raises(ServeError, match=r"\[E724\]"):
            ViewServer(PAGE, port=0, timeout=bad)
    for bad in (0, 10**6, 2.5, None):
        with pytest.raises(ServeError, match=r"\[E725\]"):
            ViewServer(PAGE, port=0, max_connections=bad)


def test_a_client_that_leaves_early_prints_no_traceback(capfd) -> None:
    """Clients that reset the connection while the page is being written (a 32 MB page, so
    the writes are still going on), or right after sending the request: no traceback."""
    before = threading.active_count()
    with ViewServer("x" * (32 << 20), port=0) as server:
        for wait_for_reply in (True, True, False, False):
            with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if wait_for_reply:
                    assert sock.recv(16).startswith(b"HTTP/1.0 200")
                # Close with a reset (linger on, 0 s), as a browser tab that is closed.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        wait_until(lambda: threading.active_count() <= before + 1, "handler threads to end")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err


def test_a_page_with_a_lone_surrogate_is_served() -> None:
    """Text Python decoded with surrogateescape: served with U+FFFD, not UnicodeEncodeError."""
    with ViewServer("<p>caf\udce9</p>", port=0) as server:
        assert get(server, "localhost") == (200, "<p>caf\ufffd</p>".encode())
