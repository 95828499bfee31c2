"""One way to serve a scripted HTTP handler on a free loopback port for a test (the OpenAI-compatible
stub servers of the backend and generator tests).

    server = LoopbackServer(Handler)        # serving at once, in a daemon thread
    server.base_url                         # "http://127.0.0.1:PORT/v1"
    server.close()

    send_body(handler, 200, data, "application/json", headers)   # inside a handler's do_POST
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def send_body(handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
    """Answer with ``data``; a client that has gone already (it timed out on purpose) is no error."""
    try:
        handler.send_response(status)
        for name, value in {"Content-Type": content_type, **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


class LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], path: str = "/v1"):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
