"""Run any WSGI app on 127.0.0.1 with a free port in a background thread (tests, the demo).

server = serve_in_thread(create_app({...}))
requests.get(server.url + "/_sandbox/state")
server.shutdown()
"""

import threading

from werkzeug.serving import make_server


class ThreadedServer:
    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, owns_app: bool = True):
        self.app = app
        self.owns_app = owns_app  # an extra host of the same app must not stop the app's threads
        self._server = make_server(host, port, app, threaded=True)
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"wsgi-{self.port}", daemon=True
        )

    def start(self) -> "ThreadedServer":
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        sandbox = getattr(self.app, "extensions", {}).get("amocrm_sandbox")
        if sandbox is not None and self.owns_app:
            sandbox.hosts.stop()
            sandbox.sender.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()


def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0) -> ThreadedServer:
    """Start serving ``app`` now; ``port=0`` picks a free port. Has ``.url``, ``.port``, ``.shutdown()``."""
    return ThreadedServer(app, host, port).start()
