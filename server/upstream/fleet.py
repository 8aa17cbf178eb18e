"""The upstream as a fleet: when it is vLLM's router (`vllm-router`) rather than one engine, how many of
its engines it can route to.

The router answers `GET /readiness` with `{"status": "ready", "healthy_workers": n, "total_workers": m}`
(503 and n = 0 when it has no healthy engine); a plain vLLM engine has no such route (404). Readiness
(server/upstream/probes.py) uses this so that `/readyz` says "not ready" as soon as the router has no
healthy engine, and how many it has otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson

READINESS_PATH = "/readiness"


async def router_readiness(
    client: httpx.AsyncClient, headers: Callable[[], dict[str, str]], timeout: float
) -> tuple[bool, str] | None:
    """(healthy, detail) from a router upstream; None when the upstream is not a router (or says nothing
    this function understands), so the caller falls back to probing the upstream as one engine."""
    try:
        r = await client.get(READINESS_PATH, headers=headers(), timeout=timeout)
        data = orjson.loads(r.content) if r.status_code in (200, 503) else None
    except (httpx.HTTPError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    healthy, total = data.get("healthy_workers"), data.get("total_workers")
    if not (_count(healthy) and _count(total)):
        return None
    if r.status_code != 200 or healthy == 0:
        return False, f"router has no healthy engine (0 of {total})"
    return True, f"router: {healthy} of {total} engines healthy"


def _count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
