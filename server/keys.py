"""API keys: generation, hashed storage, and a short-TTL resolver used on every request.

A key is `sk-angel-` + 43 url-safe characters (256 bits). Only its SHA-256 is stored; a request's key is
hashed and looked up by that digest (an index probe that reveals nothing about prefixes), and the found
digest is then confirmed with `hmac.compare_digest`. Lookups are cached for `ANGEL_KEY_CACHE_SECONDS`
so that a revocation reaches every replica within that time without a database hit per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field

import anyio

from server.db import Database

KEY_PREFIX = "sk-angel-"
DEFAULT_PROFILE = "patient"
# A database outage may serve a cached record this long before requests fail closed.
STALE_GRACE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    key_prefix: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    allowed_models: tuple[str, ...] | None = None  # None = every model
    rpm: int | None = None
    tpm: int | None = None
    max_tokens: int | None = None
    safety_profile: str = DEFAULT_PROFILE
    key_hash: str = field(default="", repr=False)
    # Keys of one tenant share a prefix cache (server/tenancy.py); None: the key is its own tenant.
    tenant: str | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at

    def allows(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


_COLUMNS = (
    "id, name, key_prefix, created_at, expires_at, revoked_at, allowed_models, rpm, tpm, max_tokens, "
    "safety_profile, key_hash, tenant"
)


def _row_to_record(row: tuple) -> KeyRecord:
    models = tuple(m for m in row[6].split(",") if m) if row[6] else None
    return KeyRecord(
        id=row[0],
        name=row[1],
        key_prefix=row[2],
        created_at=row[3],
        expires_at=row[4],
        revoked_at=row[5],
        allowed_models=models,
        rpm=row[7],
        tpm=row[8],
        max_tokens=row[9],
        safety_profile=row[10],
        key_hash=row[11],
        tenant=row[12],
    )


class KeyStore:
    """CRUD on the `api_keys` table (used by the CLI and by the resolver)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.init_schema()

    def create(
        self,
        name: str,
        *,
        expires_at: float | None = None,
        allowed_models: list[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        max_tokens: int | None = None,
        safety_profile: str = DEFAULT_PROFILE,
        tenant: str | None = None,
    ) -> tuple[str, KeyRecord]:
        """Create a key; returns the plaintext (shown once, never stored) and its record."""
        if self.find_active(name):
            raise ValueError(f"an active key named {name!r} already exists")
        key = generate_key()
        rec = KeyRecord(
            id=uuid.uuid4().hex[:12],
            name=name,
            key_prefix=key[: len(KEY_PREFIX) + 4],
            created_at=time.time(),
            expires_at=expires_at,
            allowed_models=tuple(allowed_models) if allowed_models else None,
            rpm=rpm,
            tpm=tpm,
            max_tokens=max_tokens,
            safety_profile=safety_profile,
            key_hash=hash_key(key),
            tenant=tenant,
        )
        self.db.execute(
            f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                rec.id,
                rec.name,
                rec.key_prefix,
                rec.created_at,
                rec.expires_at,
                rec.revoked_at,
                ",".join(rec.allowed_models) if rec.allowed_models else None,
                rec.rpm,
                rec.tpm,
                rec.max_tokens,
                rec.safety_profile,
                rec.key_hash,
                rec.tenant,
            ),
        )
        return key, rec

    def list(self) -> list[KeyRecord]:
        return [
            _row_to_record(r)
            for r in self.db.fetchall(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at")
        ]

    def find_active(self, name_or_id: str) -> list[KeyRecord]:
        rows = self.db.fetchall(
            f"SELECT {_COLUMNS} FROM api_keys WHERE (name = ? OR id = ?) AND revoked_at IS NULL",
            (name_or_id, name_or_id),
        )
        return [_row_to_record(r) for r in rows]

    def revoke(self, name_or_id: str) -> int:
        return self.db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE (name = ? OR id = ?) AND revoked_at IS NULL",
            (time.time(), name_or_id, name_or_id),
        )

    def by_hash(self, digest: str) -> KeyRecord | None:
        rows = self.db.fetchall(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", (digest,))
        return _row_to_record(rows[0]) if rows else None


class KeyStoreUnavailable(Exception):
    """The key database cannot be read and no recent cached answer exists."""


class KeyResolver:
    """Maps a presented key to its record: development keys from settings, then the cached database."""

    def __init__(
        self,
        store: KeyStore | None,
        dev_keys: list[str],
        cache_seconds: float,
        dev_limits: tuple[int | None, int | None, int | None] = (None, None, None),
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        rpm, tpm, max_tokens = dev_limits
        self._dev: dict[str, KeyRecord] = {}
        for i, key in enumerate(dev_keys):
            digest = hash_key(key)
            self._dev[digest] = KeyRecord(
                id=f"env{i}",
                name=f"env-key-{i}",
                key_prefix=key[:8],
                created_at=0.0,
                rpm=rpm,
                tpm=tpm,
                max_tokens=max_tokens,
                key_hash=digest,
            )
        # digest -> (record or None, fetched_at); negative answers are cached too, so garbage keys cannot
        # turn into one database query each.
        self._cache: dict[str, tuple[KeyRecord | None, float]] = {}

    async def resolve(self, key: str) -> KeyRecord | None:
        digest = hash_key(key)
        rec = self._dev.get(digest)
        if rec is None:
            rec = await self._lookup(digest)
        # The lookup was by digest; confirm in constant time anyway so no code path compares raw secrets
        # with an early-exit comparison.
        if rec is None or not hmac.compare_digest(rec.key_hash, digest):
            return None
        return rec

    async def _lookup(self, digest: str) -> KeyRecord | None:
        if self.store is None:
            return None
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and now - hit[1] < self.cache_seconds:
            return hit[0]
        try:
            rec = await anyio.to_thread.run_sync(self.store.by_hash, digest)
        except Exception as exc:  # database down, locked, read-only...
            if hit is not None and now - hit[1] < STALE_GRACE_SECONDS:
                return hit[0]
            raise KeyStoreUnavailable(str(exc)) from exc
        if len(self._cache) > 100_000:  # bound memory against floods of random keys
            self._cache.clear()
        self._cache[digest] = (rec, now)
        return rec
