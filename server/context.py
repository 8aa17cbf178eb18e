"""Per-request bookkeeping shared by the middleware (which records it) and the routes (which fill it)."""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING

from server.keys import KeyRecord

if TYPE_CHECKING:
    from server.upstream.cancel import ClientWatch

# What logs and audit rows say instead of a model name the upstream does not serve: the client's string
# is theirs to type anything into (PHI included), and nothing the client typed may land at rest.
UNSERVED_MODEL = "(unserved)"

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
        "reservation",
        "route",
        "safety",
        "safety_events",
        "status",
        "stream_error",
        "t0",
        "ttft",
        "upstream_start",
        "watch",
    )

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.t0 = time.perf_counter()
        self.route: str | None = None  # set by /v1 routes: these get audit rows and request logs
        self.model: str | None = None  # the client's model string, bounded
        # Whether the upstream serves `model` (it lists it, or answered it): only then does the name become a
        # metric label (clients cannot mint label values) or reach logs and audit rows (UNSERVED_MODEL).
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
        self.reservation: object | None = None  # the rate limiter's token reservation, settled at the end
        self.watch: ClientWatch | None = None  # the client's disconnect, watched once its body is read

    @property
    def model_at_rest(self) -> str | None:
        """The model name for logs and audit rows: only one the upstream serves."""
        if self.model is None:
            return None
        return self.model if self.model_known else UNSERVED_MODEL


def pick_request_id(raw: bytes | None) -> str:
    if raw and _SAFE_ID.match(raw):
        return raw.decode()
    return uuid.uuid4().hex
