"""`python -m mesh.static_site`: serves the built chat page (web/dist) for the
local mesh. Envoy routes every non-API path here, so the page and its gRPC-web
API share one origin. (In Kubernetes a small nginx image does this job.)"""

from __future__ import annotations

import functools
import signal
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mendkit import addresses
from mendkit.settings import SettingsError, env_int, env_str

WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


class PageHandler(SimpleHTTPRequestHandler):
    # The page loads only its own files and talks only to its own origin.
    SECURITY_HEADERS = {
        "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
                                   "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    def end_headers(self) -> None:
        for name, value in self.SECURITY_HEADERS.items():
            self.send_header(name, value)
        # Always revalidate, so a rebuilt page is picked up at once.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        # Envoy's access log already records every request; keep this quiet.
        pass


def main() -> int:
    try:
        host = env_str(addresses.WEB.host_variable, addresses.LOOPBACK)
        port = env_int(addresses.WEB.port_variable, addresses.WEB.port, minimum=1, maximum=65535)
    except SettingsError as error:
        print(f"web: {error}", file=sys.stderr)
        return 2
    root = Path(env_str("WEB_ROOT", str(WEB_DIST)))
    if not (root / "index.html").is_file():
        print(f"web: {root}/index.html is missing; build the page with `npm run build:web` "
              "(./scripts/setup does)", file=sys.stderr)
        return 1
    server = ThreadingHTTPServer((host, port), functools.partial(PageHandler, directory=str(root)))
    # SIGTERM (the mesh stopping) ends serve_forever through SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"web: serving {root} on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
