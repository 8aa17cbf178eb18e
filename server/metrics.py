"""Every Prometheus metric of the gateway (prefix `gateway_`), in one registry per app instance."""

from __future__ import annotations

import asyncio

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# The *_created series double the exposition size and no dashboard of ours reads them.
disable_created_metrics()

# Sub-millisecond buckets matter for the overhead histogram; the others span engine latencies.
_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
_SLOW = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def _task_count() -> int:
    """asyncio tasks alive in this process (read at scrape time, on the event loop)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running loop (a scrape from another thread)
        return 0


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests_total",
            "Requests answered, by route, HTTP status and model",
            ["route", "status", "model"],
            registry=r,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Whole request duration (to the last byte for streams)",
            ["route", "model"],
            buckets=_SLOW,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Request arrival to the first content chunk sent",
            ["model"],
            buckets=_SLOW,
            registry=r,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time spent in the gateway itself (request minus upstream waits)",
            ["route"],
            buckets=_FAST,
            registry=r,
        )
        self.tokens = Counter(
            "gateway_tokens_total",
            "Tokens metered from upstream usage",
            ["model", "kind"],
            registry=r,
        )
        self.inflight = Gauge("gateway_inflight_requests", "Requests being answered now", registry=r)
        # A leak check: once traffic stops this returns to its idle level (the scrape's own task included).
        self.asyncio_tasks = Gauge("gateway_asyncio_tasks", "asyncio tasks alive in the gateway", registry=r)
        self.asyncio_tasks.set_function(_task_count)
        self.ratelimit_rejections = Counter(
            "gateway_ratelimit_rejections_total",
            "Requests refused with 429",
            ["limit"],
            registry=r,
        )
        self.ratelimit_backend_errors = Counter(
            "gateway_ratelimit_backend_errors_total",
            "Rate-limit backend (Redis) failures",
            registry=r,
        )
        self.auth_failures = Counter(
            "gateway_auth_failures_total",
            "Requests refused by authentication",
            ["reason"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Upstream failures, by kind",
            ["kind"],
            registry=r,
        )
        self.safety_events = Counter(
            "gateway_safety_events_total",
            "Safety rail events",
            ["category", "action"],
            registry=r,
        )
        self.client_disconnects = Counter(
            "gateway_client_disconnects_total",
            "Streams whose client went away (upstream cancelled)",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
