"""`python -m server` serves; `python -m server keys create|list|revoke` manages API keys.

Settings come from `ANGEL_*` environment variables; `--host`, `--port`, ... override them. Any bad
setting stops start-up with one line on stderr and exit status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import re
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from server.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from server.state import GatewayState

EXIT_CONFIG = 2


def _die(message: str) -> None:
    print(f"angel-gateway: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def _settings(overrides: dict[str, Any]) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        msg = err["msg"].removeprefix("Value error, ")
        _die(f"invalid setting ANGEL_{field.upper()}: {msg}")
        raise  # unreachable


class _DrainingServer:
    """uvicorn.Server that tells the app when SIGTERM starts the drain."""

    @staticmethod
    def make(config: uvicorn.Config, state: GatewayState) -> uvicorn.Server:
        import uvicorn

        class Server(uvicorn.Server):
            async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                state.begin_drain(float(config.timeout_graceful_shutdown or 0))
                await super().shutdown(sockets)

        return Server(config)


def serve(overrides: dict[str, Any]) -> None:
    settings = _settings(overrides)
    from server.logs import setup_logging

    setup_logging(settings.log_level)
    try:
        from server.app import create_app
        from server.safety import SafetyConfigError

        app = create_app(settings)
    except SafetyConfigError as exc:
        _die(str(exc))
    except Exception as exc:  # noqa: BLE001 - database unwritable, psycopg missing: one line, no traceback
        _die(f"cannot start: {type(exc).__name__}: {exc}")
    # What start-up built (the safety layer's tables, warmed by load_engine) lives as long as the process: a
    # full garbage-collector pass over it took ~20 ms, paid by whichever request triggered it.
    gc.collect()
    gc.freeze()
    import uvicorn

    from server.protocol import guarded_protocol

    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop,
        http=guarded_protocol(settings.header_timeout, settings.max_header_bytes),
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        # Client addresses are never used (nor logged), so X-Forwarded-* is not read at all.
        proxy_headers=False,
        backlog=4096,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        timeout_keep_alive=30,
    )
    server = _DrainingServer.make(config, app.state.gateway)
    # Bind here so that a busy port is one clear line, not uvicorn's log plus exit 3.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        _die(f"cannot serve on {settings.host}:{settings.port}: {exc.strerror or exc}")
    server.run(sockets=[sock])


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _expiry(expires: str | None) -> float | None:
    """`30d`, `12h`, ... or an ISO date/time (UTC if no zone)."""
    if not expires:
        return None
    m = _DURATION.match(expires)
    if m:
        return time.time() + int(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = dt.datetime.fromisoformat(expires)
    except ValueError:
        _die(f"--expires: expected e.g. 30d, 12h or 2027-01-31T00:00, got {expires!r}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def _fmt_time(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "-"


def _check_profile(profile: str, settings: Settings) -> None:
    """A key's safety profile must exist in the policy the gateway will load (when the layer is on)."""
    from server.safety import SafetyConfigError, load_engine

    try:
        engine = load_engine(settings.safety_enabled, settings.safety_policy)
    except SafetyConfigError as exc:
        _die(str(exc))
    names = list(getattr(engine, "profile_names", []) or [])
    if engine is not None and names and profile not in names:
        _die(f"--safety-profile {profile!r} is not in the safety policy (profiles: {', '.join(names)})")


def _check_tenant(tenant: str | None) -> None:
    from server.tenancy import TENANT_NAME

    if tenant is not None and not TENANT_NAME.match(tenant):
        _die(f"--tenant {tenant!r}: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")


def keys_command(args: argparse.Namespace) -> None:
    import orjson

    from server.db import Database
    from server.keys import KeyStore

    settings = _settings({"database_url": args.database_url})
    try:
        store = KeyStore(Database(settings.database_url))
    except Exception as exc:  # noqa: BLE001 - any failure to open is reported as one line
        _die(f"cannot open key store: {type(exc).__name__}: {exc}")
    if args.keys_cmd == "create":
        _check_profile(args.safety_profile, settings)
        models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
        _check_tenant(args.tenant)
        try:
            key, rec = store.create(
                args.name,
                expires_at=_expiry(args.expires),
                allowed_models=models,
                rpm=args.rpm,
                tpm=args.tpm,
                max_tokens=args.max_tokens,
                safety_profile=args.safety_profile,
                tenant=args.tenant,
            )
        except ValueError as exc:
            _die(str(exc))
        if args.json:
            print(
                orjson.dumps(
                    {
                        "key": key,
                        "id": rec.id,
                        "name": rec.name,
                        "expires_at": rec.expires_at,
                        "tenant": rec.tenant,
                    }
                ).decode()
            )
        else:
            print(key)
            print(
                f"# key {rec.name!r} (id {rec.id}) created; this is the only time it is shown.",
                file=sys.stderr,
            )
    elif args.keys_cmd == "list":
        recs = store.list()
        if args.json:
            print(
                orjson.dumps(
                    [
                        {
                            "id": r.id,
                            "name": r.name,
                            "prefix": r.key_prefix,
                            "created_at": r.created_at,
                            "expires_at": r.expires_at,
                            "revoked_at": r.revoked_at,
                            "allowed_models": r.allowed_models,
                            "rpm": r.rpm,
                            "tpm": r.tpm,
                            "max_tokens": r.max_tokens,
                            "safety_profile": r.safety_profile,
                            "tenant": r.tenant,
                        }
                        for r in recs
                    ]
                ).decode()
            )
            return
        print(
            f"{'ID':<13}{'NAME':<24}{'PREFIX':<15}{'STATUS':<9}{'EXPIRES':<22}{'RPM':<7}{'TPM':<9}"
            f"{'MAXTOK':<8}{'PROFILE':<11}{'TENANT':<17}MODELS"
        )
        now = time.time()
        for r in recs:
            status = "revoked" if r.revoked_at else ("expired" if r.expired(now) else "active")
            print(
                f"{r.id:<13}{r.name[:23]:<24}{r.key_prefix + '…':<15}{status:<9}{_fmt_time(r.expires_at):<22}"
                f"{r.rpm or '-'!s:<7}{r.tpm or '-'!s:<9}{r.max_tokens or '-'!s:<8}{r.safety_profile:<11}"
                f"{(r.tenant or '-')[:16]:<17}"
                f"{','.join(r.allowed_models) if r.allowed_models else '*'}"
            )
    elif args.keys_cmd == "revoke":
        if store.revoke(args.name_or_id) == 0:
            _die(f"no active key named or with id {args.name_or_id!r}")
        print(f"revoked {args.name_or_id!r}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m server", description="AntAngelMed gateway")
    for name in ("host", "upstream-url", "database-url", "redis-url", "safety-policy", "log-level"):
        p.add_argument(f"--{name}", default=None)
    p.add_argument("--port", type=int, default=None)
    sub = p.add_subparsers(dest="command")
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_cmd", required=True)
    c = keys.add_parser("create", help="create a key (printed once)")
    c.add_argument("--name", required=True)
    c.add_argument("--expires", help="30d, 12h, 2w or an ISO date/time")
    c.add_argument("--models", help="comma-separated models this key may use (default: all)")
    c.add_argument("--rpm", type=int)
    c.add_argument("--tpm", type=int)
    c.add_argument("--max-tokens", type=int)
    c.add_argument("--safety-profile", default="patient")
    c.add_argument("--tenant", help="keys of one tenant share a prefix cache (default: the key alone)")
    c.add_argument("--json", action="store_true")
    ls = keys.add_parser("list", help="list keys (never the keys themselves)")
    ls.add_argument("--json", action="store_true")
    r = keys.add_parser("revoke", help="revoke a key by name or id")
    r.add_argument("name_or_id")
    for sp in (c, ls, r):
        sp.add_argument("--database-url", default=None)
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "keys":
        keys_command(args)
        return
    serve(
        {
            "host": args.host,
            "port": args.port,
            "upstream_url": args.upstream_url,
            "database_url": args.database_url,
            "redis_url": args.redis_url,
            "safety_policy": args.safety_policy,
            "log_level": args.log_level,
        }
    )


if __name__ == "__main__":
    main()
