"""`python -m mesh.static_site`: serves the built chat page (web/dist) for the
local mesh. Envoy routes every non-API path here, so the page and its gRPC-web
API share one origin. (In Kubernetes a small nginx image does this job.)

The page reads its operator settings from `config.json` beside it (the build
writes the defaults from `web/config.json`). `MEND_HANDOFF_URL` (an `https:`,
`http:`, `mailto:` or `tel:` address) and `MEND_HANDOFF_LABEL` replace the
handoff action's target and words: the "Contact our team" action offered under
an answer the bot does not know."""

from __future__ import annotations

import functools
import json
import signal
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from mendkit import addresses
from mendkit.settings import SettingsError, env_int, env_str

WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
# Schemes a handoff link may use: never `javascript:` or `data:`, which would run in the page.
HANDOFF_SCHEMES = ("https", "http", "mailto", "tel")


def handoff_url(raw: str) -> str:
    """`MEND_HANDOFF_URL` checked: an absolute link of a scheme the page may follow."""
    parts = urlsplit(raw)
    if parts.scheme not in HANDOFF_SCHEMES or any(c.isspace() or ord(c) < 32 for c in raw) or \
            (parts.scheme in ("https", "http") and not parts.netloc) or \
            (parts.scheme in ("mailto", "tel") and not parts.path):
        raise SettingsError(f"MEND_HANDOFF_URL must be an absolute {', '.join(s + ':' for s in HANDOFF_SCHEMES)} "
                            f"link, got {raw!r}")
    return raw


def page_config(root: Path) -> bytes:
    """The page's `config.json`: the built defaults, with the operator's settings over them."""
    try:
        config = json.loads((root / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    if url := env_str("MEND_HANDOFF_URL", ""):
        config["handoffUrl"] = handoff_url(url)
    if label := env_str("MEND_HANDOFF_LABEL", ""):
        config["handoffLabel"] = label
    return json.dumps(config).encode()


class PageHandler(SimpleHTTPRequestHandler):
    # The page loads only its own files and talks only to its own origin.
    SECURITY_HEADERS = {
        "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
                                   "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    # The page's settings, built once at start-up (`page_config`).
    config = b"{}"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        super().do_GET()

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
        root = Path(env_str("WEB_ROOT", str(WEB_DIST)))
        config = page_config(root)
    except SettingsError as error:
        print(f"web: {error}", file=sys.stderr)
        return 2
    if not (root / "index.html").is_file():
        print(f"web: {root}/index.html is missing; build the page with `npm run build:web` "
              "(./scripts/setup does)", file=sys.stderr)
        return 1
    handler = type("ConfiguredPageHandler", (PageHandler,), {"config": config})
    server = ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(root)))
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
