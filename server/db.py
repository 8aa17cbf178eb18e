"""A very small synchronous database layer shared by the key store and the audit log.

SQLite for development and single-node installs, PostgreSQL (psycopg 3) for production. SQL is written
once with `?` placeholders and rewritten for psycopg. Callers keep these calls off the event loop.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        key_prefix TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        revoked_at DOUBLE PRECISION,
        allowed_models TEXT,
        rpm INTEGER,
        tpm INTEGER,
        max_tokens INTEGER,
        safety_profile TEXT NOT NULL DEFAULT 'patient',
        tenant TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS api_keys_name ON api_keys (name)",
    """CREATE TABLE IF NOT EXISTS audit_log (
        ts DOUBLE PRECISION NOT NULL,
        request_id TEXT NOT NULL,
        key_name TEXT,
        route TEXT,
        model TEXT,
        status INTEGER,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        duration_ms DOUBLE PRECISION,
        safety TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS audit_safety_events (
        ts DOUBLE PRECISION NOT NULL,
        request_id TEXT NOT NULL,
        key_name TEXT,
        category TEXT NOT NULL,
        action TEXT NOT NULL
    )""",
]

# (table, column, declaration) of columns added to a released table; `init_schema` adds them to older
# databases (CREATE TABLE IF NOT EXISTS leaves an existing table as it was).
ADDED_COLUMNS = [
    ("api_keys", "tenant", "TEXT"),  # server/tenancy.py: keys of one tenant share a prefix cache
]


class Database:
    """One connection guarded by a lock; fine for the low write rates of keys and batched audit rows."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        if url.startswith("sqlite:///"):
            self.kind = "sqlite"
            path = url.removeprefix("sqlite:///")
            if path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            # isolation_level=None: autocommit; every statement sees other processes' commits at once.
            self._conn: Any = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            # WAL + NORMAL: commits survive a crash of this process; only an OS crash or power loss can
            # drop the last few (batched) audit rows. FULL would fsync every audit batch.
            self._conn.execute("PRAGMA synchronous=NORMAL")
        else:
            self.kind = "postgresql"
            try:
                import psycopg
            except ImportError as exc:
                raise RuntimeError(
                    "ANGEL_DATABASE_URL is postgresql:// but psycopg is not installed "
                    "(pip install 'antangelmed-serve[postgres]')"
                ) from exc
            self._psycopg = psycopg
            self._pg_url = url.replace("postgres://", "postgresql://", 1)
            self._conn = psycopg.connect(self._pg_url, autocommit=True, connect_timeout=5)

    def _sql(self, sql: str) -> str:
        return sql if self.kind == "sqlite" else sql.replace("?", "%s")

    def init_schema(self) -> None:
        for stmt in SCHEMA:
            self.execute(stmt)
        for table, column, decl in ADDED_COLUMNS:
            self._add_column(table, column, decl)

    def _add_column(self, table: str, column: str, decl: str) -> None:
        """A column added after the table's first release: databases made before it get it here."""
        if self.kind == "postgresql":
            self.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {decl}")
            return
        if column not in {row[1] for row in self.fetchall(f"PRAGMA table_info({table})")}:
            try:
                self.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise

    def _run(self, fn: Any) -> Any:
        """Run fn(connection) under the lock; a PostgreSQL connection lost (server restart, failover)
        is re-opened once and the call retried, instead of failing every later call."""
        with self._lock:
            try:
                return fn(self._conn)
            except Exception as exc:
                if self.kind != "postgresql" or not isinstance(exc, self._psycopg.OperationalError):
                    raise
                if not self._conn.closed:
                    raise
                self._conn = self._psycopg.connect(self._pg_url, autocommit=True, connect_timeout=5)
                return fn(self._conn)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        q = self._sql(sql)
        return self._run(lambda c: c.execute(q, params).rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """All rows in one transaction."""
        if not rows:
            return
        if self.kind == "sqlite":
            with self._lock:
                self._conn.execute("BEGIN")
                try:
                    self._conn.executemany(sql, rows)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            return
        q = self._sql(sql)

        def many(c: Any) -> None:
            with c.transaction(), c.cursor() as cur:
                cur.executemany(q, rows)

        self._run(many)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        q = self._sql(sql)
        return self._run(lambda c: list(c.execute(q, params).fetchall()))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
