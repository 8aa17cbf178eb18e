"""Per-tenant prefix-cache isolation: the `cache_salt` the gateway sets on every request to the engine.

vLLM reuses the KV blocks of any earlier prompt that shares a prefix with a new one, and a request that
reuses them answers sooner. Shared between callers, that is a timing side channel: by measuring time to
first token, one tenant learns whether another recently sent a given system prompt or pasted record. vLLM's
`cache_salt` enters the hash of a prompt's first block (and so of every block after it): prompts with
different salts never share cached blocks. The gateway derives the salt from the caller's tenant, so one
tenant's requests keep reusing one another's prefixes and never another tenant's.

    ANGEL_CACHE_ISOLATION   tenant (default): the key's `tenant` if it has one, else the key itself
                            key: every key is its own tenant, whatever its `tenant` says
                            off: no salt; every caller shares the prefix cache
    ANGEL_CACHE_SALT_SECRET the HMAC key; every gateway replica needs the same one (else a tenant's turns
                            miss the cache whenever they reach another replica). Unset: a random secret per
                            process, with a warning.

The salt is HMAC-SHA256(secret, tenant), URL-safe base64 without padding (43 characters, 256 bits): not
guessable without the secret, and not reversible to the tenant. A `cache_salt` sent by the client is always
replaced (or removed when isolation is off), never trusted: a client that chose another tenant's salt would
read that tenant's cache through the same timing channel.

vLLM accepts a salt that is a non-empty string of at most 128 characters without '@', '/', '\\' or NUL
(`validate_cache_salt` in vllm/entrypoints/generate/base/protocol.py); every salt made here is checked
against that rule and the stricter shape above before it is used.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.keys import KeyRecord
    from server.settings import Settings

log = logging.getLogger("angel.tenancy")

CACHE_SALT = "cache_salt"
# Domain separation: the same secret can never yield these salts for another purpose.
_DOMAIN = b"antangelmed/cache-salt/v1\x00"
_SALT_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# vLLM's own limits on a salt (see the module docstring).
VLLM_MAX_SALT_CHARS = 128
_VLLM_FORBIDDEN = frozenset("@/\\\x00")
# A tenant name as `keys create --tenant` accepts it: short, printable, no separators that could make
# two tenants' identities collide.
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_CACHED = 100_000


class Isolation(str, enum.Enum):
    TENANT = "tenant"
    KEY = "key"
    OFF = "off"


def tenant_identity(key: KeyRecord, mode: Isolation) -> str | None:
    """Who shares a prefix cache with this key: `tenant:<name>`, `key:<id>`, or None (isolation off).
    The two kinds are prefixed so that a tenant named like some key's id is still another tenant."""
    if mode is Isolation.OFF:
        return None
    if mode is Isolation.TENANT and key.tenant:
        return f"tenant:{key.tenant}"
    return f"key:{key.id}"


def vllm_accepts_salt(salt: object) -> bool:
    """vLLM's rule for `cache_salt`, restated so the gateway never sends a salt the engine refuses."""
    return (
        isinstance(salt, str)
        and 0 < len(salt) <= VLLM_MAX_SALT_CHARS
        and not any(c in _VLLM_FORBIDDEN for c in salt)
    )


def derive_salt(secret: bytes, identity: str) -> str:
    digest = hmac.new(secret, _DOMAIN + identity.encode("utf-8"), hashlib.sha256).digest()
    salt = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    if not (_SALT_SHAPE.match(salt) and vllm_accepts_salt(salt)):  # cannot happen; checked, not assumed
        raise ValueError("derived cache_salt has an unexpected shape")
    return salt


class CacheSalter:
    """Sets each request's `cache_salt` from its key's tenant (see the module docstring)."""

    def __init__(self, mode: Isolation | str, secret: bytes) -> None:
        self.mode = Isolation(mode)
        if self.mode is not Isolation.OFF and len(secret) < 16:
            raise ValueError("the cache-salt secret must be at least 16 bytes")
        self._secret = secret
        self._salts: dict[str, str] = {}  # identity -> salt (HMAC costs ~2 us; a dict hit ~50 ns)

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheSalter:
        mode = Isolation(settings.cache_isolation)
        configured = settings.cache_salt_secret
        if configured is not None:
            return cls(mode, configured.get_secret_value().encode("utf-8"))
        if mode is not Isolation.OFF:
            log.warning(
                "ANGEL_CACHE_SALT_SECRET is not set: using a random secret for this process. Tenants stay "
                "isolated, but gateway replicas (and restarts) salt the same tenant differently, so its "
                "requests miss the prefix cache whenever they reach another replica."
            )
        return cls(mode, secrets.token_bytes(32))

    def salt_for(self, key: KeyRecord) -> str | None:
        identity = tenant_identity(key, self.mode)
        if identity is None:
            return None
        salt = self._salts.get(identity)
        if salt is None:
            if len(self._salts) >= _MAX_CACHED:  # bounded however many keys appear
                self._salts.clear()
            salt = self._salts[identity] = derive_salt(self._secret, identity)
        return salt

    def apply(self, body: dict[str, Any], key: KeyRecord) -> None:
        """Replace the body's `cache_salt` with the tenant's (remove it when isolation is off)."""
        salt = self.salt_for(key)
        if salt is None:
            body.pop(CACHE_SALT, None)
        else:
            body[CACHE_SALT] = salt
