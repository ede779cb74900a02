"""Serve one viewer page on localhost, for browsers or setups where ``file://`` is awkward.

Only the page itself is served (not its folder), only on the loopback interface, from memory.
"""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

from ..errors import OutputError

HOST = "127.0.0.1"


@dataclass(eq=False)
class PageServer:
    """A running server; ``stop()`` shuts it down and frees the port."""

    httpd: ThreadingHTTPServer
    thread: threading.Thread
    url: str

    def wait(self) -> None:
        """Block until the server stops; short joins keep Ctrl-C responsive."""
        while self.thread.is_alive():
            self.thread.join(timeout=0.5)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _handler(page: bytes, name: str) -> type[BaseHTTPRequestHandler]:
    paths = {"/", f"/{name}"}

    class PageHandler(BaseHTTPRequestHandler):
        def _respond(self, body: bool) -> None:
            if unquote(self.path.split("?", 1)[0]) not in paths:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if body:
                self.wfile.write(page)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._respond(body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._respond(body=False)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet: the command's own lines are the only output."""

    return PageHandler


def start_server(page: bytes, *, port: int, name: str = "index.html") -> PageServer:
    """Serve ``page`` at ``http://127.0.0.1:PORT/NAME`` (and ``/``) from a background thread; port 0: any free one."""
    try:
        httpd = ThreadingHTTPServer((HOST, port), _handler(page, name))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise OutputError(f"Port {port} on {HOST} is in use; pass --port with another number (0 picks a free one).") from None
        raise OutputError(f"Cannot serve on {HOST}:{port} ({exc.strerror or exc}).") from None
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="kmtalk-view", daemon=True)
    thread.start()
    return PageServer(httpd=httpd, thread=thread, url=f"http://{HOST}:{httpd.server_address[1]}/{quote(name)}")
