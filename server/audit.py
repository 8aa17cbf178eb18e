"""Audit log: one row per request and one per safety event, written in batches off the event loop.

Rows carry who/what/when/how much (time, key name, route, model, status, tokens, request id, safety
categories) and never any content. Batching keeps the database out of the request's latency; a full
queue drops rows and counts them rather than blocking traffic.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from server.db import Database

log = logging.getLogger("server.audit")

_REQUEST_SQL = (
    "INSERT INTO audit_log (ts, request_id, key_name, route, model, status, prompt_tokens, completion_tokens,"
    " duration_ms, safety) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_EVENT_SQL = "INSERT INTO audit_safety_events (ts, request_id, key_name, category, action) VALUES (?,?,?,?,?)"


class AuditLog:
    def __init__(self, db: Database | None, flush_interval: float = 0.5, max_queue: int = 100_000) -> None:
        self.db = db
        self.dropped = 0
        self._q: queue.Queue[tuple[str, tuple[Any, ...]] | None] = queue.Queue(max_queue)
        self._interval = flush_interval
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
        try:
            self._q.put_nowait((sql, row))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: dict[str, list[tuple[Any, ...]]] = {}
            try:
                item = self._q.get(timeout=self._interval)
            except queue.Empty:
                continue
            deadline = time.monotonic() + 0.05
            while True:
                if item is None:
                    stop = True
                    break
                batch.setdefault(item[0], []).append(item[1])
                if time.monotonic() > deadline:
                    break
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
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
            self._q.put(None)
            self._thread.join(timeout)
            self._thread = None
