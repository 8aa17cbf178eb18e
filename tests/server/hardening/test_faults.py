"""Faults not covered in tests/server: the SQLite database locked or read-only, SIGTERM during 100
open streams, and a client whose timeout is shorter than the upstream's answer. Real processes only.

Each fault must end with a clear OpenAI-shaped error (or a documented degraded success), correct
metrics, no hang, and the gateway still serving the next request.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from server.db import Database
from server.keys import KeyStore
from tests.server.hardening.conftest import AUTH, MODEL, assert_openai_error, upstream_stats
from tests.support.procs import (
    REPO,
    STANDIN,
    Proc,
    control,
    free_port,
    metric,
    start_gateway,
    start_standin,
    wait_http,
)

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
URL = "/v1/chat/completions"


def chat(gw: Proc, key: str | None = None, timeout: float = 15) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else AUTH
    return httpx.post(gw.url + URL, json=BODY, headers=headers, timeout=timeout)


def audit_rows(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as c:
        return c.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    p = start_standin(tmp_path_factory.mktemp("standin"), chunks=16)
    yield p
    p.stop()


@pytest.fixture(autouse=True)
def reset_standin(standin: Proc) -> Iterator[None]:
    yield
    control(standin, mode="normal", delay_ms=0, chunks=16)


# --- the database: locked, then read-only ----------------------------------------------------------------


def test_locked_sqlite_keeps_serving_and_auditing_resumes(standin: Proc, tmp_path: Path) -> None:
    """Another process holds the write lock (a long transaction, a backup, a migration): key lookups still
    read (WAL), audit writes time out, are logged and dropped, requests keep flowing, auditing resumes."""
    db = tmp_path / "gw.db"
    store = KeyStore(Database(f"sqlite:///{db}"))
    seen, _ = store.create("seen")
    fresh, _ = store.create("fresh")
    g = start_gateway(tmp_path, standin.url, db=db, ANGEL_KEY_CACHE_SECONDS="0.2", ANGEL_LOG_LEVEL="info")
    try:
        assert chat(g, seen).status_code == 200
        time.sleep(0.5)
        before_rows = audit_rows(db)
        locker = sqlite3.connect(db, isolation_level=None, timeout=1)
        locker.execute("BEGIN IMMEDIATE")
        locker.execute("INSERT INTO audit_log (ts, request_id) VALUES (0, 'lock')")
        try:
            time.sleep(0.3)  # past the key cache
            ok = 0
            t0 = time.perf_counter()
            for key in (None, seen, fresh, None, seen, fresh):
                t1 = time.perf_counter()
                r = chat(g, key)
                # Key lookups do not queue behind audit batches waiting out SQLite's busy timeout (5 s).
                assert time.perf_counter() - t1 < 2.0, (key, time.perf_counter() - t1)
                time.sleep(0.3)  # past the key cache again, so every database key is looked up
                if r.status_code == 503:  # a lookup that could not get the database: fail closed, clearly
                    assert_openai_error(r, 503, "key_store_unavailable")
                else:
                    assert r.status_code == 200, r.text
                    ok += 1
            assert ok == 6 and time.perf_counter() - t0 < 15  # WAL readers are not blocked by the writer
            deadline = time.monotonic() + 15
            while "audit write failed" not in g.log() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "audit write failed" in g.log()  # the loss is visible to the operator
            assert metric(g.url, "gateway_requests_total", route=URL, status="200") >= ok + 1
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        time.sleep(0.5)
        assert chat(g, fresh).status_code == 200
        deadline = time.monotonic() + 15
        while audit_rows(db) <= before_rows and time.monotonic() < deadline:
            time.sleep(0.2)
        assert audit_rows(db) > before_rows  # auditing resumed
    finally:
        g.stop()


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


def test_read_only_sqlite_keeps_serving_and_auditing_resumes(standin: Proc, tmp_path: Path) -> None:
    """The database file and its directory become immutable (root ignores file modes; the immutable
    attribute it cannot). Keys are still read; audit writes fail, are logged, and resume afterwards."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    dbdir = tmp_path / "db"
    dbdir.mkdir()
    db = dbdir / "gw.db"
    key, _ = KeyStore(Database(f"sqlite:///{db}")).create("k")
    g = start_gateway(tmp_path, standin.url, db=db, ANGEL_KEY_CACHE_SECONDS="0.2", ANGEL_LOG_LEVEL="info")
    files = [p for p in (db, db.with_name("gw.db-wal"), db.with_name("gw.db-shm")) if p.exists()]
    try:
        assert chat(g, key).status_code == 200
        time.sleep(0.5)  # let the audit batch for it land
        rows_before = audit_rows(db)  # (not read while immutable: SQLite's mmap of -shm would SIGBUS us)
        try:
            _chattr("+i", *files, dbdir)
        except subprocess.CalledProcessError:
            pytest.skip("this file system does not support the immutable attribute")
        try:
            for _ in range(5):
                r = chat(g, key, timeout=20)
                # The key store may still be read (200) or not (503, fail closed): never a 500, never a hang.
                assert r.status_code in (200, 503), r.text
                if r.status_code == 503:
                    assert_openai_error(r, 503, "key_store_unavailable")
            assert chat(g).status_code == 200  # development keys are unaffected
            deadline = time.monotonic() + 15
            while "audit write failed" not in g.log() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "audit write failed" in g.log()
            assert g.proc.poll() is None
        finally:
            _chattr("-i", *files, dbdir)
        time.sleep(0.5)
        assert chat(g, key).status_code == 200
        deadline = time.monotonic() + 15
        while audit_rows(db) == rows_before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert audit_rows(db) > rows_before  # writes resume once the database is writable again
    finally:
        g.stop()


# --- SIGTERM during 100 open streams ---------------------------------------------------------------------


async def _read_stream(client: httpx.AsyncClient, started: asyncio.Event | None) -> tuple[str, float]:
    """Reads one stream to its end; returns how it ended ('done', an error code, or 'truncated')."""
    last = None
    async with client.stream("POST", URL, json={**BODY, "stream": True}) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if started is not None and not started.is_set():
                started.set()
            if line.startswith("data: "):
                last = line[6:]
    end = time.monotonic()
    if last == "[DONE]":
        return "done", end
    if last is not None and last.startswith('{"error"'):
        return orjson.loads(last)["error"]["code"], end
    return "truncated", end


async def _sigterm_during_streams(g: Proc, standin: Proc, n: int) -> tuple[list[tuple[str, float]], float]:
    limits = httpx.Limits(max_connections=n + 10)
    async with httpx.AsyncClient(base_url=g.url, headers=AUTH, timeout=30, limits=limits) as client:
        control(standin, delay_ms=50, chunks=30)  # the first half: ~1.5 s streams
        firsts = [asyncio.Event() for _ in range(n)]
        tasks = []
        for i in range(n):
            if i == n // 2:
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in firsts[: n // 2])), 20)
                control(standin, delay_ms=50, chunks=600)  # the second half: 30 s streams
            tasks.append(asyncio.create_task(_read_stream(client, firsts[i])))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in firsts)), 20)
        sent = time.monotonic()
        g.proc.send_signal(signal.SIGTERM)
        results = await asyncio.wait_for(asyncio.gather(*tasks), 30)
        return results, sent


def test_sigterm_with_100_open_streams_ends_each_cleanly_within_the_grace(
    standin: Proc, tmp_path: Path
) -> None:
    grace = 4.0
    g = start_gateway(tmp_path, standin.url, ANGEL_SHUTDOWN_GRACE_SECONDS=str(int(grace)))
    try:
        results, sent = asyncio.run(_sigterm_during_streams(g, standin, 100))
        exited = g.proc.wait(grace + 10)
        exit_after = time.monotonic() - sent
    finally:
        g.stop()
    endings = [how for how, _ in results]
    # Every stream ends cleanly: the short ones finish, the long ones get the shutdown error event.
    assert set(endings) <= {"done", "server_shutting_down"}, endings
    assert endings[:50].count("done") == 50, endings[:50]
    assert endings[50:].count("server_shutting_down") == 50, endings[50:]
    assert max(t for _, t in results) - sent < grace + 1.5  # all ended within the grace period
    assert exited in (0, -signal.SIGTERM) and exit_after < grace + 5
    stats = upstream_stats(standin)
    assert stats["inflight"] == 0  # the upstream requests of the cut streams were closed too


# --- the client gives up before the upstream answers -----------------------------------------------------


@pytest.fixture(scope="module")
def gw(standin: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    p = start_gateway(tmp_path_factory.mktemp("gw"), standin.url, ANGEL_UPSTREAM_READ_TIMEOUT="10")
    yield p
    p.stop()


def _wait_for(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_stream_client_giving_up_early_cancels_the_upstream(gw: Proc, standin: Proc) -> None:
    control(standin, delay_ms=1500, chunks=10)  # a chunk every 1.5 s: slower than the client's 0.5 s
    cancelled = upstream_stats(standin)["streams_cancelled"]
    disconnects = metric(gw.url, "gateway_client_disconnects_total")
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", gw.url + URL, json={**BODY, "stream": True}, headers=AUTH, timeout=0.5) as r,
    ):
        for _ in r.iter_raw():
            pass
    # The gateway notices, cancels the upstream request, and its books balance.
    assert _wait_for(lambda: upstream_stats(standin)["streams_cancelled"] == cancelled + 1)
    assert _wait_for(lambda: metric(gw.url, "gateway_client_disconnects_total") == disconnects + 1)
    assert _wait_for(lambda: metric(gw.url, "gateway_inflight_requests") == 1)  # only the /metrics scrape
    control(standin, delay_ms=0)
    assert chat(gw, timeout=5).status_code == 200


def test_non_stream_client_giving_up_early_is_still_counted(gw: Proc, standin: Proc) -> None:
    control(standin, delay_ms=2000)
    before = metric(gw.url, "gateway_requests_total", route=URL)
    with pytest.raises(httpx.ReadTimeout):
        chat(gw, timeout=0.5)
    control(standin, delay_ms=0)
    t0 = time.perf_counter()
    assert chat(gw, timeout=5).status_code == 200  # others are served at once meanwhile
    assert time.perf_counter() - t0 < 1.0
    # The abandoned request is finished and counted (no leaked in-flight request) once the upstream answers.
    assert _wait_for(lambda: metric(gw.url, "gateway_inflight_requests") == 1, 10)
    assert _wait_for(lambda: metric(gw.url, "gateway_requests_total", route=URL) == before + 2, 10)
    assert upstream_stats(standin)["inflight"] == 0


# --- the upstream process is killed with streams open, then comes back on the same port -----------------


def _standin_on(port: int, tmp: Path) -> Proc:
    proc = subprocess.Popen(
        [sys.executable, str(STANDIN), "--port", str(port), "--chunks", "200", "--delay-ms", "50"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / f"standin-{port}-{time.monotonic_ns()}.log").open("wb"),
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", proc)
    return Proc(proc, url)


async def _open_streams(g: Proc, n: int) -> tuple[list[asyncio.Task], list[asyncio.Event]]:
    client = httpx.AsyncClient(
        base_url=g.url, headers=AUTH, timeout=30, limits=httpx.Limits(max_connections=n)
    )
    firsts = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.create_task(_read_stream(client, e)) for e in firsts]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in firsts)), 20)
    return tasks, firsts


def test_upstream_killed_with_open_streams_then_restarted(tmp_path: Path) -> None:
    port = free_port()
    up = _standin_on(port, tmp_path)
    g = start_gateway(tmp_path, up.url, ANGEL_UPSTREAM_READ_TIMEOUT="5")
    try:

        async def scenario() -> list[tuple[str, float]]:
            tasks, _ = await _open_streams(g, 20)
            killed = time.monotonic()
            up.proc.kill()  # SIGKILL: no goodbye, sockets reset by the kernel
            up.proc.wait(5)
            results = await asyncio.wait_for(asyncio.gather(*tasks), 15)
            assert max(t for _, t in results) - killed < 3  # ended at once, not at the read timeout
            return results

        before = metric(g.url, "gateway_upstream_errors_total")
        results = asyncio.run(scenario())
        # Every stream ends with an OpenAI-shaped error event naming the cause.
        assert [how for how, _ in results] == ["upstream_disconnected"] * 20, results
        assert metric(g.url, "gateway_upstream_errors_total") >= before + 20
        # While it is down: a clear 502, quickly.
        t0 = time.perf_counter()
        assert_openai_error(chat(g, timeout=10), 502, "upstream_unavailable")
        assert time.perf_counter() - t0 < 2
        # Back on the same port: the gateway's pooled connections to the dead process are not reused.
        up = _standin_on(port, tmp_path)
        for _ in range(5):
            assert chat(g, timeout=10).status_code == 200
        assert metric(g.url, "gateway_inflight_requests") == 1  # the scrape itself
    finally:
        g.stop()
        up.stop()
