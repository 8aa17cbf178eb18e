"""Audit log: one row per request and one per safety event, written in batches off the event loop.

Rows carry who/what/when/how much (time, key name, route, model, status, tokens, request id, safety
categories) and never any content. Batching keeps the database out of the request's latency; a full
queue drops rows and counts them rather than blocking traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from server.db import Database

log = logging.getLogger("server.audit")
MAX_BATCH = 2000

_REQUEST_SQL = (
    "INSERT INTO audit_log (ts, request_id, key_name, route, model, status, prompt_tokens, completion_tokens,"
    " duration_ms, safety) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_EVENT_SQL = "INSERT INTO audit_safety_events (ts, request_id, key_name, category, action) VALUES (?,?,?,?,?)"


class AuditLog:
    def __init__(self, db: Database | None, flush_interval: float = 0.25, max_queue: int = 100_000) -> None:
        self.db = db
        self.dropped = 0
        # A deque, not queue.Queue: appends from the event loop are atomic and wake no thread (a Queue's
        # notify per row cost a futex call and a GIL hand-off on every request); the writer polls.
        self._rows: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._max = max_queue
        self._interval = flush_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if db is not None:
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()

    def request(
        self,
        request_id: str,
        key_name: str | None,
        route: str,
        model: str | None,
        status: int,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        duration_ms: float,
        safety: str,
    ) -> None:
        self._put(
            _REQUEST_SQL,
            (
                time.time(),
                request_id,
                key_name,
                route,
                model,
                status,
                prompt_tokens,
                completion_tokens,
                round(duration_ms, 3),
                safety,
            ),
        )

    def safety_event(self, request_id: str, key_name: str | None, category: str, action: str) -> None:
        self._put(_EVENT_SQL, (time.time(), request_id, key_name, category, action))

    def _put(self, sql: str, row: tuple[Any, ...]) -> None:
        if self.db is None:
            return
        if len(self._rows) >= self._max:
            self.dropped += 1
            return
        self._rows.append((sql, row))

    def _run(self) -> None:
        # One transaction per flush interval keeps the writer's CPU per row small.
        while not self._stop.wait(self._interval):
            self._flush()
        self._flush()

    def _flush(self) -> None:
        while self._rows:
            batch: dict[str, list[tuple[Any, ...]]] = {}
            for _ in range(min(len(self._rows), MAX_BATCH)):
                sql, row = self._rows.popleft()
                batch.setdefault(sql, []).append(row)
            self._write(batch)

    def _write(self, batch: dict[str, list[tuple[Any, ...]]]) -> None:
        assert self.db is not None
        for sql, rows in batch.items():
            try:
                self.db.executemany(sql, rows)
            except Exception as exc:  # noqa: BLE001 - locked or read-only database: count, log, go on
                self.dropped += len(rows)
                log.error("audit write failed", extra={"error": type(exc).__name__, "rows": len(rows)})

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout)
            self._thread = None
