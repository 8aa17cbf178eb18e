"""Work on large request bodies away from the event loop: parsing, validation, the input rails and the
serialisation of what goes upstream.

Why: the gateway serves every request from one event loop. Scanning a 4 MB body takes the input rails
seconds (about 1 µs per character), and while it ran on the loop every other request, `/healthz`
included, waited 4-6 s. Bodies up to `OFFLOAD_BYTES` are handled inline (a few milliseconds at most, and
no hand-off cost for ordinary requests); larger ones go to a worker.

Why processes and not threads: the rails' whole-text steps (normalisation, regular expressions over the
whole text) are single C calls that keep the GIL. Measured on a 3.9 M-character message scanned in a
thread, the event loop still stalled for up to 240 ms at a time (p99 140 ms). Worker processes leave
the loop nothing to wait for. They are spawned (never forked: a fork would inherit the gateway's client
sockets and keep them open), load the safety engine from the same settings, and are started on the first
large body. An engine handed to `create_app` directly (tests, embedding) cannot be rebuilt in another
process; its scans run in a thread instead.

A job's arguments and results are plain data: the raw body goes to the worker, the bytes to send upstream
and the rails' verdicts (without the request's text) come back.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from server.errors import GatewayError
from server.validation import Inspected, inspect

log = logging.getLogger("server.offload")

# Bodies larger than this are parsed and scanned off the event loop. At ~1 µs per character of scanning,
# 16 KiB keeps an inline request under ~20 ms of loop time; a hand-off costs ~1 ms (two pipe trips).
OFFLOAD_BYTES = 16 * 1024
WORKER_NICENESS = 10
# The fields of a verdict that hold the request's text: already in the upstream bytes, never sent back.
_TEXT_FIELDS = ("messages", "prompt", "body")

T = TypeVar("T")
Scan = Callable[[Any, dict[str, Any], str, str | None], Any]  # (engine, body, kind, profile) -> InputCheck


def inspect_body(engine: Any, raw: bytes, kind: str, strict: bool) -> Inspected:
    """`server.validation.inspect` as a job: the returned body leaves out the (large) text field."""
    return inspect(raw, kind, strict, keep_text=False)


@dataclass(slots=True)
class Prepared:
    """What goes upstream (None when the rails answer or refuse instead) and the rails' decision."""

    content: bytes | None
    check: Any  # server.safety.InputCheck, or None with safety off


def prepare(
    engine: Any,
    raw: bytes | None,
    body: dict[str, Any],
    field: str,
    kind: str,
    scan: Scan | None,
    profile: str | None,
) -> Prepared:
    """Run the input rails over the body and serialise it for the upstream. `raw`: the body as the
    client sent it, when `body` lacks its text field (inspected off the loop): the text is taken from it."""
    if raw is not None:
        body = {**body, field: orjson.loads(raw)[field]}
    check = None
    if engine is not None and scan is not None:
        check = scan(engine, body, kind, profile)
        if check.canned is not None or check.blocked is not None:
            return Prepared(None, check)
        check.apply_to(body)
    return Prepared(orjson.dumps(body), check)


@dataclass(slots=True)
class _Refused:
    """A GatewayError from a job, as plain data (GatewayError itself does not survive pickling)."""

    status: int
    code: str | None
    message: str
    param: str | None

    def error(self) -> GatewayError:
        return GatewayError(self.status, self.code, self.message, param=self.param)  # type: ignore[arg-type]


def _run_job(fn: Callable[..., T], args: tuple[Any, ...], engine: Any) -> T | _Refused:
    try:
        return fn(engine, *args)
    except GatewayError as err:
        return _Refused(err.status, err.code, err.message, err.param)


# ---- in the worker process ----------------------------------------------------------------------------
_ENGINE: Any = None


def _worker_init(enabled: bool, policy: str | None, parent: int) -> None:
    global _ENGINE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which stops its workers
    # A scan is background work and the event loop is not: when they compete for a core (2 workers on a
    # 2-core machine), the loop should win, or every request waits on the scheduler instead of the GIL.
    os.nice(WORKER_NICENESS)
    from server.safety import load_engine

    logging.disable(logging.WARNING)  # the engine's start-up warnings: the gateway has logged them once
    try:
        _ENGINE = load_engine(enabled, policy)  # warmed up: its tables are built
    finally:
        logging.disable(logging.NOTSET)
    gc.collect()
    gc.freeze()  # as in the gateway (server/__main__.py): full GC passes skip the engine's tables
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    # A gateway killed outright (SIGKILL, OOM) cannot stop its workers: they notice and leave.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _in_worker(fn: Callable[..., T], args: tuple[Any, ...]) -> T | _Refused:
    result = _run_job(fn, args, _ENGINE)
    if isinstance(result, Prepared) and result.check is not None:
        for v in result.check.verdicts:  # the text is in `content` already: don't send it back
            for name in _TEXT_FIELDS:
                if getattr(v, name, None) is not None:
                    setattr(v, name, None)
    return result


# ---- in the gateway -----------------------------------------------------------------------------------
class Offload:
    """Runs jobs off the event loop: in spawned worker processes that build the safety engine from
    `engine_source` (`(enabled, policy)` from the settings), or in threads over `engine` when the engine
    was handed to the app and cannot be rebuilt elsewhere (`engine_source` None)."""

    def __init__(self, workers: int, engine: Any, engine_source: tuple[bool, str | None] | None) -> None:
        self._workers = workers
        self._engine = engine
        self._source = engine_source
        self._pool: Executor | None = None

    def _start(self) -> Executor:
        if self._source is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="angel-offload")
        else:
            self._pool = ProcessPoolExecutor(
                self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(*self._source, os.getpid()),
            )
        return self._pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(engine, *args) off the loop; a GatewayError it raises is raised here. Cancelling the caller
        drops a job that has not started (a started one finishes and is discarded)."""
        for attempt in (0, 1):
            pool = self._pool or self._start()
            try:
                future = self._submit(pool, fn, args)
            except BrokenProcessPool:
                # A worker died while idle (killed, out of memory): nothing of this request was lost.
                self._discard(pool)
                if attempt == 0:
                    continue
                raise
            try:
                result = await asyncio.wrap_future(future)
            except BrokenProcessPool:
                # A worker died running a job (this one's or another's): this request fails, the next
                # ones get new workers.
                self._discard(pool)
                raise GatewayError(
                    503, "server_overloaded", "The request could not be processed; retry."
                ) from None
            if isinstance(result, _Refused):
                raise result.error()
            return result
        raise AssertionError("unreachable")

    def _submit(self, pool: Executor, fn: Callable[..., T], args: tuple[Any, ...]) -> Future:
        if isinstance(pool, ProcessPoolExecutor):
            return pool.submit(_in_worker, fn, args)
        return pool.submit(_run_job, fn, args, self._engine)

    def _discard(self, pool: Executor) -> None:
        log.error("an offload worker died; starting new ones")
        if self._pool is pool:
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
