"""Starting and stopping the real processes gateway tests talk to: the stand-in upstream, gateways, Redis.

Every helper binds to 127.0.0.1 on a free port and kills what it started (tests clean up after themselves).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "support" / "standin_upstream.py"
TEST_KEY = "sk-angel-test-0123456789abcdefghijklmnop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(n: int) -> int:
    """A base port with base+1..base+n free on every interface, below the ephemeral range (where ports
    picked by binding port 0 can be taken by any outgoing connection before they are used)."""
    for _ in range(200):
        base = random.randrange(20000, 32000 - n)
        socks = []
        try:
            for p in range(base + 1, base + n + 1):
                s = socket.socket()
                socks.append(s)
                s.bind(("", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of ports")


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


class Proc:
    """A child process with a base URL; `stop()` is SIGTERM, then SIGKILL after a grace period."""

    def __init__(
        self, proc: subprocess.Popen, url: str, log_path: Path | None = None, cleanup: Path | None = None
    ) -> None:
        self.proc = proc
        self.url = url
        self.log_path = log_path
        self.cleanup = cleanup  # a directory to remove once the process is gone

    def stop(self, grace: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.cleanup is not None:
            shutil.rmtree(self.cleanup, ignore_errors=True)
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


def start_standin(
    tmp: Path, *, mode: str = "normal", chunks: int = 64, delay_ms: float = 0.0, model: str = "angel-standin"
) -> Proc:
    port = free_port()
    log_path = tmp / f"standin-{port}.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(STANDIN),
            "--port",
            str(port),
            "--mode",
            mode,
            "--chunks",
            str(chunks),
            "--delay-ms",
            str(delay_ms),
            "--model",
            model,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", proc)
    return Proc(proc, url, log_path)


def gateway_env(upstream: str, db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANGEL_")}
    env.update(
        {
            "ANGEL_UPSTREAM_URL": upstream,
            "ANGEL_API_KEYS": TEST_KEY,
            "ANGEL_DATABASE_URL": f"sqlite:///{db}",
            "ANGEL_LOG_LEVEL": "warning",
        }
    )
    env.update(extra)
    return env


def start_gateway(tmp: Path, upstream: str, db: Path | None = None, **extra: str) -> Proc:
    port = free_port()
    log_path = tmp / f"gateway-{port}.log"
    env = gateway_env(upstream, db or tmp / "gw.db", ANGEL_PORT=str(port), **extra)
    proc = subprocess.Popen(
        [sys.executable, "-m", "server"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc)
    return Proc(proc, url, log_path)


def control(standin: Proc, **kw: object) -> None:
    """Change a running stand-in upstream's behaviour (mode, delay_ms, chunks)."""
    httpx.post(standin.url + "/_control", json=kw, timeout=5).raise_for_status()


def metric(base_url: str, name: str, **labels: str) -> float:
    """Sum of the Prometheus samples of `name` at base_url/metrics whose labels include `labels`."""
    total = 0.0
    for line in httpx.get(base_url + "/metrics", timeout=30).text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def start_redis(tmp: Path, port: int | None = None) -> Proc:
    """A throw-away redis-server on `port` (a free one by default; pass the old one to restart it)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (see scripts/apt-packages.txt)")
    port = port or free_port()
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return Proc(proc, f"redis://127.0.0.1:{port}/0")
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise TimeoutError("redis-server did not start")


def start_postgres(tmp: Path) -> Proc:
    """A throw-away PostgreSQL server (Debian's `postgresql` package); removed again by `stop()`.

    `.url` is a postgresql:// URL of database `angel`, user `angel` (trust auth on 127.0.0.1 only).
    """
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (see scripts/apt-packages.txt)")
    user = None
    if os.geteuid() == 0:
        # initdb refuses to run as root, and pytest's temp tree is private to root: run as the postgres
        # user in a directory of its own.
        user = "postgres"
        tmp = Path(tempfile.mkdtemp(prefix="angel-pg-"))
        shutil.chown(tmp, user)
    data = tmp / "pgdata"
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        user=user,
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(tmp)],
        user=user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    psql = [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c"]
    deadline = time.monotonic() + 30
    while True:
        r = subprocess.run([*psql, "CREATE USER angel"], capture_output=True, check=False)
        if r.returncode == 0:
            subprocess.run([*psql, "CREATE DATABASE angel OWNER angel"], capture_output=True, check=True)
            break
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"postgres did not start: {r.stderr.decode()[-300:]}")
        time.sleep(0.2)
    return Proc(proc, f"postgresql://angel@127.0.0.1:{port}/angel", cleanup=tmp if user else None)
