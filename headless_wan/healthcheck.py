"""`python -m headless_wan.healthcheck`: the Docker HEALTHCHECK probe (no torch, starts fast).

Exit 0 when `/healthz` on the configured metrics port answers 200, 1 otherwise. Without a metrics port there
is nothing to ask, so the container counts as healthy while the process runs (Docker already
notices an exited worker).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from pydantic import ValidationError

from headless_wan.config import Settings


def main() -> int:
    try:
        port = Settings().metrics_port  # the same settings (environment, .env) the worker read
    except ValidationError as exc:
        print(f"unhealthy: invalid settings: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 1
    if not port:  # none, or "any free port": nothing known to ask
        return 0
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{int(port)}/healthz", timeout=5) as reply:
            print(reply.read().decode("utf-8", "replace"))
            return 0 if reply.status == 200 else 1
    except (OSError, ValueError, urllib.error.URLError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
