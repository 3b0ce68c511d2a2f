"""`python -m headless_wan.healthcheck`: the Docker HEALTHCHECK probe (stdlib only, starts fast).

Exit 0 when `/healthz` on `HW_METRICS_PORT` answers 200, 1 otherwise. Without a metrics port there
is nothing to ask, so the container counts as healthy while the process runs (Docker already
notices an exited worker).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("HW_METRICS_PORT", "").strip()
    if not port:
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
