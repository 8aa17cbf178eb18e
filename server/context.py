"""Per-request bookkeeping shared by the middleware (which records it) and the routes (which fill it)."""

from __future__ import annotations

import re
import time
import uuid

from server.keys import KeyRecord

# Client-supplied request ids are echoed into logs and upstream headers: accept only a safe alphabet.
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")


class RequestCtx:
    __slots__ = (
        "completion_tokens",
        "disconnected",
        "key",
        "model",
        "model_known",
        "overhead",
        "prompt_tokens",
        "ratelimit_key",
        "request_id",
        "route",
        "safety",
        "safety_events",
        "status",
        "stream_error",
        "t0",
        "ttft",
        "upstream_start",
    )

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.t0 = time.perf_counter()
        self.route: str | None = None  # set by /v1 routes: these get audit rows and request logs
        self.model: str | None = None
        # Only a model the upstream serves becomes a metric label (clients cannot mint label values).
        self.model_known = False
        self.key: KeyRecord | None = None  # once authenticated
        self.status = 0
        self.safety = ""
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.ttft: float | None = None
        # Seconds spent in the gateway itself; routes add the pre-upstream part and the stream pump the rest.
        self.overhead = 0.0
        self.upstream_start: float | None = None
        self.stream_error: str | None = None
        self.disconnected = False
        self.safety_events: list[tuple[str, str]] = []
        self.ratelimit_key: str | None = None


def pick_request_id(raw: bytes | None) -> str:
    if raw and _SAFE_ID.match(raw):
        return raw.decode()
    return uuid.uuid4().hex
