"""Gateway overhead benchmark: the same load straight to a fast stand-in upstream and through the
gateway, interleaved in one run, with auth (a hashed database key), rate limits (RPM+TPM on that key),
the safety layer (default policy) and metrics/audit/logging switched on as in production.

    .venv/bin/python benchmarks/gateway_bench.py [--quick] [--redis] [--out benchmarks/results/gateway.json]
        [--server-tree DIR]   # run the gateway from another checkout (e.g. `git archive` of the last commit)
        [--compare-tree DIR --rounds N]   # before/after: this tree and DIR alternately, same load

Reports: added latency p50/p99 at concurrency 1 (non-stream, and time to first token on 64-chunk
streams); the gateway process's CPU time per request and per 64-chunk stream (from /proc via psutil);
sustained requests/s and streams/s of one gateway process; p50/p99 (TTFT and full stream time) with the
error count at 64 and 256 concurrent streams; `/healthz` latency while a maximum-size body (just under
ANGEL_MAX_BODY_BYTES of bilingual clinical text) is parsed and scanned. The load generator is a minimal
asyncio HTTP/1.1 client (keep-alive, no parsing beyond framing) so that the client costs the same on both
paths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.db import Database
from server.keys import KeyStore
from tests.support.procs import Proc, gateway_env, start_redis, start_standin, wait_http

MODEL = "angel-standin"
CHUNKS = 64
_CONTENT = b'"content":"'


class Conn:
    """One keep-alive HTTP/1.1 connection; `post` returns (status, ttft, total, ok_stream)."""

    def __init__(self, host: str, port: int, auth: bytes) -> None:
        self.host, self.port, self.auth = host, port, auth
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.r, self.w = await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    async def post(self, path: bytes, body: bytes) -> tuple[int, float | None, float, bool]:
        if self.w is None:
            await self.open()
        assert self.r is not None and self.w is not None
        t0 = time.perf_counter()
        self.w.write(
            b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n%s"
            b"Content-Length: %d\r\n\r\n%s" % (path, self.auth, len(body), body)
        )
        head = await self.r.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        ttft = None
        ok = True
        if b"transfer-encoding: chunked" in lower:
            tail = b""
            while True:
                size = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.r.readuntil(b"\r\n")
                    break
                data = (await self.r.readexactly(size + 2))[:-2]
                if ttft is None:
                    i = data.find(_CONTENT)
                    while i >= 0:
                        if data[i + len(_CONTENT) : i + len(_CONTENT) + 1] not in (b'"', b""):
                            ttft = time.perf_counter() - t0
                            break
                        i = data.find(_CONTENT, i + 1)
                tail = (tail + data)[-64:]
            ok = tail.endswith(b"data: [DONE]\n\n") and b'"error"' not in tail
        else:
            i = lower.find(b"content-length:")
            n = int(lower[i + 15 : lower.index(b"\r\n", i)])
            await self.r.readexactly(n)
        if b"connection: close" in lower:
            self.w.close()
            self.w = self.r = None
        return status, ttft, time.perf_counter() - t0, ok

    async def get(self, path: bytes) -> float:
        """GET with a Content-Length answer; returns the latency."""
        if self.w is None:
            await self.open()
        assert self.r is not None and self.w is not None
        t0 = time.perf_counter()
        self.w.write(b"GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % path)
        head = (await self.r.readuntil(b"\r\n\r\n")).lower()
        i = head.find(b"content-length:")
        await self.r.readexactly(int(head[i + 15 : head.index(b"\r\n", i)]))
        return time.perf_counter() - t0

    def close(self) -> None:
        if self.w is not None:
            self.w.close()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def ms(x: float) -> float:
    return round(x * 1000, 3)


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def body(stream: bool, max_tokens: int = CHUNKS) -> bytes:
    b = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "What is a normal resting heart rate for adults?"}],
        "max_tokens": max_tokens,
    }
    if stream:
        b["stream"] = True
    return json.dumps(b).encode()


PATH = b"/v1/chat/completions"


async def c1_interleaved(direct: Conn, gw: Conn, n: int, stream: bool, gproc: psutil.Process) -> dict:
    """Alternate direct and gateway requests one at a time; CPU is the gateway's over its requests."""
    b = body(stream)
    lat: dict[str, list[float]] = {"direct": [], "gateway": []}
    cpu = 0.0
    for i in range(n):
        order = (("direct", direct), ("gateway", gw)) if i % 2 == 0 else (("gateway", gw), ("direct", direct))
        for name, conn in order:
            c0 = cpu_s(gproc) if name == "gateway" else 0.0
            status, ttft, total, ok = await conn.post(PATH, b)
            if name == "gateway":
                cpu += cpu_s(gproc) - c0
            assert status == 200 and ok, (name, status)
            lat[name].append(ttft if stream else total)
    out = {}
    for name, xs in lat.items():
        out[name] = {"p50_ms": ms(pct(xs, 50)), "p99_ms": ms(pct(xs, 99)), "mean_ms": ms(sum(xs) / len(xs))}
    out["added_p50_ms"] = round(out["gateway"]["p50_ms"] - out["direct"]["p50_ms"], 3)
    out["added_p99_ms"] = round(out["gateway"]["p99_ms"] - out["direct"]["p99_ms"], 3)
    out["gateway_cpu_ms_per_request"] = round(cpu / n * 1000, 3)
    out["n"] = n
    return out


async def sustained(
    host: str, port: int, auth: bytes, conc: int, seconds: float, stream: bool, gproc: psutil.Process | None
) -> dict:
    """Closed loop: `conc` connections each sending back-to-back for `seconds`."""
    b = body(stream)
    conns = [Conn(host, port, auth) for _ in range(conc)]
    for c in conns:
        await c.open()
    done = errors = 0
    stop = time.perf_counter() + seconds

    async def worker(c: Conn) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop:
            status, _, _, ok = await c.post(PATH, b)
            if status == 200 and ok:
                done += 1
            else:
                errors += 1

    c0 = cpu_s(gproc) if gproc else 0.0
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - t0
    cpu = (cpu_s(gproc) - c0) if gproc else 0.0
    for c in conns:
        c.close()
    out = {"per_s": round(done / wall, 1), "completed": done, "errors": errors, "concurrency": conc}
    if gproc:
        out["gateway_cpu_ms_per_request"] = round(cpu / max(done, 1) * 1000, 3)
        out["gateway_cpu_util"] = round(cpu / wall, 3)
    return out


async def wave(host: str, port: int, auth: bytes, n: int) -> dict:
    """n streams opened at once (each 64 chunks, paced by the stand-in): TTFT and full-stream times."""
    b = body(True)
    conns = [Conn(host, port, auth) for _ in range(n)]
    await asyncio.gather(*(c.open() for c in conns))
    res = await asyncio.gather(*(c.post(PATH, b) for c in conns), return_exceptions=True)
    for c in conns:
        c.close()
    good = [r for r in res if not isinstance(r, BaseException) and r[0] == 200 and r[3] and r[1] is not None]
    ttft = [r[1] for r in good]
    total = [r[2] for r in good]
    return {
        "streams": n,
        "errors": n - len(good),
        "ttft_p50_ms": ms(pct(ttft, 50)) if ttft else None,
        "ttft_p99_ms": ms(pct(ttft, 99)) if ttft else None,
        "total_p50_ms": ms(pct(total, 50)) if total else None,
        "total_p99_ms": ms(pct(total, 99)) if total else None,
    }


async def control(url: str, **kw: object) -> None:
    import httpx

    async with httpx.AsyncClient() as c:
        (await c.post(url + "/_control", json=kw)).raise_for_status()


MAX_BODY = 4 * 2**20  # ANGEL_MAX_BODY_BYTES' default
_CLINICAL = (
    "Patient reports chest tightness after climbing stairs, no fever, mild cough for a week, "
    "blood pressure 150/95 at the pharmacy. 患者自述活动后胸闷一周，无发热，药店测血压150/95。 "
)


def max_size_body() -> bytes:
    """One chat message of bilingual clinical text, the body just under the body limit."""
    text = _CLINICAL * ((MAX_BODY - 1024) // len(_CLINICAL.encode()))
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 8}
    return json.dumps(body, ensure_ascii=False).encode()


async def healthz_under_scan(host: str, port: int, auth: bytes, rounds: int) -> dict:
    """`/healthz` every 10 ms on its own connection while maximum-size bodies are handled one after the
    other: its latency is what every other client of the gateway sees meanwhile."""
    big = max_size_body()
    probe, poster = Conn(host, port, auth), Conn(host, port, auth)
    lat: list[float] = []
    durations: list[float] = []
    statuses: list[int] = []
    done = asyncio.Event()

    async def poll() -> None:
        while not done.is_set():
            lat.append(await probe.get(b"/healthz"))
            await asyncio.sleep(0.01)

    async def post() -> None:
        for _ in range(rounds):
            status, _, total, _ = await poster.post(PATH, big)
            statuses.append(status)
            durations.append(total)
        done.set()

    await asyncio.gather(poll(), post())
    probe.close()
    poster.close()
    return {
        "body_bytes": len(big),
        "bodies": rounds,
        "statuses": sorted(set(statuses)),
        "body_seconds_mean": round(sum(durations) / len(durations), 3),
        "healthz_n": len(lat),
        "healthz_p50_ms": ms(pct(lat, 50)),
        "healthz_p99_ms": ms(pct(lat, 99)),
        "healthz_max_ms": ms(max(lat)),
    }


def start_gateway_from(tree: Path, tmp: Path, upstream: str, db: Path, **extra: str) -> Proc:
    """`python -m server` run from `tree` (its own `server` package comes first on sys.path)."""
    import subprocess

    from tests.support.procs import free_port

    port = free_port()
    log_path = tmp / f"gateway-{port}.log"
    env = gateway_env(upstream, db, ANGEL_PORT=str(port), **extra)
    proc = subprocess.Popen(
        [sys.executable, "-m", "server"],
        env=env,
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc)
    return Proc(proc, url, log_path)


async def run(args: argparse.Namespace, safety: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="gwbench-"))
    standin = start_standin(tmp, chunks=CHUNKS)
    db = tmp / "gw.db"
    key, _ = KeyStore(Database(f"sqlite:///{db}")).create("bench", rpm=10**9, tpm=10**12)
    procs: list[Proc] = [standin]
    extra = {"ANGEL_LOG_LEVEL": "info", "ANGEL_SAFETY_ENABLED": "true" if safety else "false"}
    if args.redis:
        redis = start_redis(tmp)
        procs.append(redis)
        extra["ANGEL_REDIS_URL"] = redis.url
    gw = start_gateway_from(Path(args.server_tree), tmp, standin.url, db, **extra)
    procs.append(gw)
    gproc = psutil.Process(gw.proc.pid)
    auth = b"Authorization: Bearer %s\r\n" % key.encode()
    sp = int(standin.url.rsplit(":", 1)[1])
    gp = int(gw.url.rsplit(":", 1)[1])
    results: dict = {}
    try:
        direct, through = Conn("127.0.0.1", sp, auth), Conn("127.0.0.1", gp, auth)
        q = args.quick
        await c1_interleaved(direct, through, 100 if q else 300, False, gproc)  # warm-up
        results["c1_nonstream"] = await c1_interleaved(direct, through, 300 if q else 2000, False, gproc)
        print("c1 non-stream", results["c1_nonstream"], flush=True)
        results["c1_stream_ttft"] = await c1_interleaved(direct, through, 100 if q else 500, True, gproc)
        print("c1 stream", results["c1_stream_ttft"], flush=True)
        # The burst above (64 chunks written back to back) lets the kernel batch the first events; an
        # engine paces tokens milliseconds apart, so TTFT is also measured with 2 ms between 8 chunks.
        await control(standin.url, delay_ms=2, chunks=8)
        results["c1_stream_ttft_paced"] = await c1_interleaved(
            direct, through, 100 if q else 300, True, gproc
        )
        await control(standin.url, delay_ms=0, chunks=CHUNKS)
        print("c1 stream paced", results["c1_stream_ttft_paced"], flush=True)
        direct.close()
        through.close()
        secs = 3 if q else 8
        for stream in (False, True):
            name = "streams" if stream else "requests"
            results[f"sustained_{name}"] = {
                "direct": await sustained("127.0.0.1", sp, auth, 32, secs, stream, None),
                "gateway": await sustained("127.0.0.1", gp, auth, 32, secs, stream, gproc),
            }
            print(f"sustained {name}", results[f"sustained_{name}"], flush=True)
        await control(standin.url, delay_ms=20)  # 64 chunks at 50 tokens/s: streams stay open ~1.3 s
        for n in (64, 256):
            results[f"concurrent_{n}"] = {
                "direct": await wave("127.0.0.1", sp, auth, n),
                "gateway": await wave("127.0.0.1", gp, auth, n),
            }
            print(f"concurrent {n}", results[f"concurrent_{n}"], flush=True)
        results["gateway_peak_rss_mb"] = round(gproc.memory_info().rss / 2**20, 1)
        await control(standin.url, delay_ms=0, max_model_len=10**8)  # the whole body fits: it is scanned
        await Conn("127.0.0.1", gp, auth).post(PATH, max_size_body())  # warm-up (starts offload workers)
        results["healthz_during_max_body"] = await healthz_under_scan("127.0.0.1", gp, auth, 2 if q else 4)
        print("healthz during max-size bodies", results["healthz_during_max_body"], flush=True)
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["setup"] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "gateway": "python -m server (uvloop + httptools), auth via database key, RPM+TPM limits ("
        + ("Redis" if args.redis else "in-memory")
        + "), "
        + ("safety layer with its default policy" if safety else "safety layer OFF")
        + ", metrics, audit, JSON logs",
        "upstream": f"tests/support/standin_upstream.py, {CHUNKS}-chunk answers",
        "server_tree": str(args.server_tree),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return results


def _rows(r: dict) -> list[tuple[str, str, str]]:
    a, s, p = r["c1_nonstream"], r["c1_stream_ttft"], r["c1_stream_ttft_paced"]
    sr, ss = r["sustained_requests"], r["sustained_streams"]
    rows = [
        (
            "added latency, c=1 non-stream, p50 / p99",
            f"{a['added_p50_ms']:.3f} / {a['added_p99_ms']:.3f} ms",
            f"{a['direct']['p50_ms']:.3f} / {a['direct']['p99_ms']:.3f} ms",
        ),
        (
            "added TTFT, c=1 64-chunk burst stream, p50 / p99",
            f"{s['added_p50_ms']:.3f} / {s['added_p99_ms']:.3f} ms",
            f"{s['direct']['p50_ms']:.3f} / {s['direct']['p99_ms']:.3f} ms",
        ),
        (
            "added TTFT, c=1 stream paced 2 ms/token, p50 / p99",
            f"{p['added_p50_ms']:.3f} / {p['added_p99_ms']:.3f} ms",
            f"{p['direct']['p50_ms']:.3f} / {p['direct']['p99_ms']:.3f} ms",
        ),
        (
            "gateway CPU per request, c=1 / c=32",
            f"{a['gateway_cpu_ms_per_request']:.3f} / {sr['gateway']['gateway_cpu_ms_per_request']:.3f} ms",
            "",
        ),
        (
            "gateway CPU per 64-chunk stream, c=1 / c=32",
            f"{s['gateway_cpu_ms_per_request']:.3f} / {ss['gateway']['gateway_cpu_ms_per_request']:.3f} ms",
            "",
        ),
        (
            "sustained requests/s, c=32 (gateway CPU use)",
            f"{sr['gateway']['per_s']} ({sr['gateway']['gateway_cpu_util'] * 100:.0f}% of a core)",
            f"{sr['direct']['per_s']}",
        ),
        (
            "sustained 64-chunk streams/s, c=32 (gateway CPU use)",
            f"{ss['gateway']['per_s']} ({ss['gateway']['gateway_cpu_util'] * 100:.0f}% of a core)",
            f"{ss['direct']['per_s']}",
        ),
    ]
    h = r.get("healthz_during_max_body")
    if h:
        rows.append(
            (
                f"/healthz p50 / p99 / max while {h['body_bytes'] / 2**20:.1f} MiB bodies are scanned",
                f"{h['healthz_p50_ms']} / {h['healthz_p99_ms']} / {h['healthz_max_ms']} ms"
                f" (n={h['healthz_n']})",
                "",
            )
        )
        rows.append(("one max-size body, answered in (mean)", f"{h['body_seconds_mean']} s", ""))
    for n in (64, 256):
        g, d = r[f"concurrent_{n}"]["gateway"], r[f"concurrent_{n}"]["direct"]
        rows.append(
            (
                f"{n} concurrent streams: TTFT p50 / p99 (errors)",
                f"{g['ttft_p50_ms']} / {g['ttft_p99_ms']} ms ({g['errors']})",
                f"{d['ttft_p50_ms']} / {d['ttft_p99_ms']} ms ({d['errors']})",
            )
        )
        rows.append(
            (
                f"{n} concurrent streams: whole stream p50 / p99",
                f"{g['total_p50_ms']} / {g['total_p99_ms']} ms",
                f"{d['total_p50_ms']} / {d['total_p99_ms']} ms",
            )
        )
    return rows


def table(results: dict) -> str:
    names = list(results)
    per = {n: _rows(results[n]) for n in names}
    out = [
        "| measure | " + " | ".join(f"gateway, {n}" for n in names) + " | stand-in direct |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for i, (label, _, ref) in enumerate(per[names[0]]):
        out.append(f"| {label} | " + " | ".join(per[n][i][1] for n in names) + f" | {ref or '-'} |")
    return "\n".join(out)


async def compare(args: argparse.Namespace, safety: bool) -> dict:
    """Two gateways (this checkout and `--compare-tree`) in front of one stand-in, measured in alternation
    round by round, so that both see the same machine load: sustained requests/s and 64-chunk streams/s
    at c=32 with the gateway's CPU per request, then /healthz while maximum-size bodies are scanned."""
    tmp = Path(tempfile.mkdtemp(prefix="gwcmp-"))
    standin = start_standin(tmp, chunks=CHUNKS)
    procs: list[Proc] = [standin]
    trees = {"after": Path(args.server_tree), "before": Path(args.compare_tree)}
    gws: dict[str, tuple[int, bytes, psutil.Process]] = {}
    extra = {"ANGEL_LOG_LEVEL": "info", "ANGEL_SAFETY_ENABLED": "true" if safety else "false"}
    try:
        for name, tree in trees.items():
            db = tmp / f"{name}.db"
            key, _ = KeyStore(Database(f"sqlite:///{db}")).create("bench", rpm=10**9, tpm=10**12)
            gw = start_gateway_from(tree, tmp, standin.url, db, **extra)
            procs.append(gw)
            auth = b"Authorization: Bearer %s\r\n" % key.encode()
            gws[name] = (int(gw.url.rsplit(":", 1)[1]), auth, psutil.Process(gw.proc.pid))
        rows: dict[str, dict[str, list]] = {n: {"requests": [], "streams": []} for n in trees}
        for r in range(args.rounds):
            for name in list(trees) if r % 2 else list(reversed(trees)):
                port, auth, gproc = gws[name]
                for kind, stream in (("requests", False), ("streams", True)):
                    m = await sustained("127.0.0.1", port, auth, 32, 5, stream, gproc)
                    rows[name][kind].append((m["per_s"], m["gateway_cpu_ms_per_request"]))
            print("round", r, {n: {k: v[-1] for k, v in d.items()} for n, d in rows.items()}, flush=True)
        out: dict = {}
        for name, d in rows.items():
            out[name] = (
                {f"{kind}_per_s_median": sorted(x[0] for x in xs)[len(xs) // 2] for kind, xs in d.items()}
                | {f"{kind}_cpu_ms_median": sorted(x[1] for x in xs)[len(xs) // 2] for kind, xs in d.items()}
                | {"rounds": d}
            )
        await control(standin.url, max_model_len=10**8)
        for name, (port, auth, _) in gws.items():
            await Conn("127.0.0.1", port, auth).post(PATH, max_size_body())  # warm-up
            out[name]["healthz_during_max_body"] = await healthz_under_scan("127.0.0.1", port, auth, 2)
            print(name, out[name]["healthz_during_max_body"], flush=True)
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out["setup"] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "trees": {k: str(v) for k, v in trees.items()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller samples (a smoke run)")
    p.add_argument("--redis", action="store_true", help="rate limits in a real redis-server")
    p.add_argument("--safety", default="on,off", help="configurations to run: on, off or on,off")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gateway.json"))
    p.add_argument("--server-tree", default=str(REPO), help="run the gateway from this checkout")
    p.add_argument("--compare-tree", help="before/after: also run this checkout's gateway, alternating")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds with --compare-tree")
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = {}
    if args.compare_tree:
        for mode in args.safety.split(","):
            name = "safety on (production)" if mode == "on" else "safety off"
            print(f"== {name}: {args.server_tree} (after) against {args.compare_tree} (before)", flush=True)
            results[name] = asyncio.run(compare(args, mode == "on"))
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.out}")
        return
    for mode in args.safety.split(","):
        name = "safety on (production)" if mode == "on" else "safety off"
        print(f"== {name}", flush=True)
        results[name] = asyncio.run(run(args, mode == "on"))
    print()
    print(table(results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
