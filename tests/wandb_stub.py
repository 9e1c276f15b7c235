"""Stand-ins for a W&B server on 127.0.0.1, each stopping by itself: one that accepts connections and never
answers (a hung proxy or server), and one that answers every request with an HTTP status."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def _serving(step: Callable[[], None], lifetime_s: float):
    """Calls ``step`` (which waits at most a fraction of a second) in a thread until the block ends or the
    lifetime is over, whichever comes first."""
    stop = threading.Event()
    deadline = time.monotonic() + lifetime_s

    def loop() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            step()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


@contextmanager
def silent_server(lifetime_s: float = 120.0):
    """Yields its base URL; connections are accepted and held open, nothing is ever sent back."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            held.append(server.accept()[0])
        except OSError:
            pass

    try:
        with _serving(accept, lifetime_s):
            yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        for conn in held:
            conn.close()
        server.close()


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@contextmanager
def answering_server(lifetime_s: float = 60.0):
    """Yields its base URL; every GET is answered 200."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.timeout = 0.2
    try:
        with _serving(server.handle_request, lifetime_s):
            yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.server_close()
