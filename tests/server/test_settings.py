"""Start-up with bad settings: one clear line on stderr, exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.procs import REPO, TEST_KEY, gateway_env


def run_server(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    e = gateway_env("http://127.0.0.1:9", tmp_path / "gw.db", ANGEL_PORT="1")
    e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        check=False,
        env=e,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ANGEL_PORT": "eighty"}, "ANGEL_PORT"),
        ({"ANGEL_PORT": "70000"}, "ANGEL_PORT"),
        ({"ANGEL_UPSTREAM_URL": "localhost:8000"}, "ANGEL_UPSTREAM_URL"),
        ({"ANGEL_API_KEYS": "changeme"}, "ANGEL_API_KEYS"),
        ({"ANGEL_API_KEYS": f"{TEST_KEY},short"}, "ANGEL_API_KEYS"),
        ({"ANGEL_UPSTREAM_API_KEY": "your-key-here"}, "ANGEL_UPSTREAM_API_KEY"),
        ({"ANGEL_DATABASE_URL": "mysql://x"}, "ANGEL_DATABASE_URL"),
        ({"ANGEL_REDIS_URL": "http://redis"}, "ANGEL_REDIS_URL"),
        ({"ANGEL_LOG_LEVEL": "loud"}, "ANGEL_LOG_LEVEL"),
        ({"ANGEL_SAFETY_ENABLED": "perhaps"}, "ANGEL_SAFETY_ENABLED"),
        ({"ANGEL_MAX_HEADER_BYTES": "100"}, "ANGEL_MAX_HEADER_BYTES"),
        ({"ANGEL_MAX_EVENT_BYTES": "1000"}, "ANGEL_MAX_EVENT_BYTES"),
        ({"ANGEL_SCAN_WORKERS": "0"}, "ANGEL_SCAN_WORKERS"),
    ],
)
def test_bad_setting_is_one_line_and_exit_2(tmp_path, env, needle):
    r = run_server(tmp_path, **env)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr
    # The refused secret itself is not echoed back.
    for v in env.values():
        if "key" in v or v == "changeme":
            assert v not in lines[0]


def test_bad_flag_value_is_one_line_and_exit_2(tmp_path):
    r = run_server(tmp_path, "--port", "0")
    assert r.returncode == 2 and "ANGEL_PORT" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_port_in_use_is_one_line_and_exit_2(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = run_server(tmp_path, ANGEL_PORT=str(s.getsockname()[1]))
    assert r.returncode == 2 and "cannot serve" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("bad", ["changeme", "short-token"])
def test_weak_metrics_token_is_refused(bad):
    from pydantic import ValidationError

    from server.settings import Settings

    with pytest.raises(ValidationError, match="metrics_token"):
        Settings(metrics_token=bad)


def test_size_limits_default_to_the_documented_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.settings import Settings

    for name in ("ANGEL_MAX_HEADER_BYTES", "ANGEL_MAX_EVENT_BYTES", "ANGEL_SCAN_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert s.max_header_bytes == 64 * 1024
    assert s.max_event_bytes >= 64 * 2**20
    assert s.scan_workers >= 1
