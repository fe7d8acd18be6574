"""Virtual keys: create and revoke them, and verify a secret on every request, fast.

A secret is ``sk-sym-`` followed by 32 random bytes (``secrets.token_urlsafe``). Only
its SHA-256 is stored, with the first 12 characters for people to recognise it.

How a request is checked without touching the database:

- ``KeyService.verify`` hashes the secret and looks the digest up in an in-memory
  cache. A miss loads the key once from the store (concurrent misses for one key share
  that load); unknown digests are remembered briefly, in a bounded table.
- Every replica polls the store about once a second for keys whose ``updated_at`` moved
  (a revoke, an edit) and updates its cache, so a revoke made anywhere is refused
  everywhere within about two seconds. Polling an indexed timestamp is a cheap query
  that works the same on SQLite and PostgreSQL, needs no extra connection per replica
  (LISTEN/NOTIFY would) and heals by itself after a database outage. Each poll re-reads
  the last ``poll_overlap`` seconds, so a change whose transaction committed late, or
  whose writer's clock is a little behind, is still seen.
- ``last_used_at`` is collected in memory and written in batches by a background task.

The key of the current request is available anywhere inside it through
``current_key()`` (a context variable set by ``SymbiosisMiddleware``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..exceptions import AuthenticationError, InvalidRequestError
from ..store.base import (
    AuditEntry,
    BusinessUnitRecord,
    KeyRecord,
    KeyStore,
    NewKey,
    NewProject,
    ProjectRecord,
    StoreUnavailableError,
)

log = logging.getLogger("symbiosis.keys")
M = TypeVar("M", bound=BaseModel)

SECRET_PREFIX = "sk-sym-"
VISIBLE_PREFIX_LENGTH = 12
_MAX_SECRET_LENGTH = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHECK_TIMEOUT = 3.0


def generate_secret() -> str:
    """A new key secret: the ``sk-sym-`` prefix and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest stored for ``secret``."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyContext:
    """Who is calling: the verified key and its project, as handlers and services see it."""

    key_id: str
    key_name: str | None
    project_id: str
    project_name: str
    allowed_models: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    budget_usd: Decimal | None = None
    budget_period: str | None = None
    project_rpm_limit: int | None = None
    project_tpm_limit: int | None = None
    project_budget_usd: Decimal | None = None
    project_budget_period: str | None = None

    def allows(self, model: str) -> bool:
        """An empty allowed set means every model of the project."""
        return not self.allowed_models or model in self.allowed_models

    @classmethod
    def from_record(cls, record: KeyRecord) -> KeyContext:
        return cls(
            key_id=record.id,
            key_name=record.name,
            project_id=record.project_id,
            project_name=record.project_name,
            allowed_models=frozenset(record.allowed_models),
            expires_at=record.expires_at,
            rpm_limit=record.rpm_limit,
            tpm_limit=record.tpm_limit,
            budget_usd=record.budget_usd,
            budget_period=record.budget_period,
            project_rpm_limit=record.project_rpm_limit,
            project_tpm_limit=record.project_tpm_limit,
            project_budget_usd=record.project_budget_usd,
            project_budget_period=record.project_budget_period,
        )


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key and its secret. The secret exists only here: show it once."""

    key: KeyRecord
    secret: str


_current_key: ContextVar[KeyContext | None] = ContextVar("symbiosis_key", default=None)


def current_key() -> KeyContext | None:
    """The key of the request being served, or None outside an authenticated request."""
    return _current_key.get()


class bound_key:  # lower case: it reads as the function it replaced
    """Make ``context`` the current key for the code inside the block.

    A class rather than ``@contextmanager``: it runs once per request, and a generator
    costs three times as much.
    """

    __slots__ = ("_context", "_token")

    def __init__(self, context: KeyContext | None) -> None:
        self._context = context

    def __enter__(self) -> None:
        self._token = _current_key.set(self._context)

    def __exit__(self, *exc_info: object) -> None:
        _current_key.reset(self._token)


@dataclass(frozen=True, slots=True)
class _Entry:
    key_hash: str
    context: KeyContext
    revoked: bool
    expires: float  # epoch seconds; inf when the key never expires

    @classmethod
    def of(cls, record: KeyRecord) -> _Entry:
        expires = record.expires_at.timestamp() if record.expires_at else math.inf
        return cls(
            record.key_hash, KeyContext.from_record(record), bool(record.revoked_at), expires
        )


def _missing() -> AuthenticationError:
    return AuthenticationError(
        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>', "
        "or in an 'api-key' or 'x-api-key' header."
    )


def _unknown() -> AuthenticationError:
    return AuthenticationError("Incorrect API key provided.")


class KeyService:
    """Verifies secrets from a cache kept fresh by polling; creates, lists and revokes keys.

    Call ``start()`` once an event loop runs (it is idempotent, and ``verify`` works
    before it, only without revocations from other replicas) and ``aclose()`` at the end.
    Administrative methods take an ``actor`` that the audit log records.
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        poll_interval: float = 1.0,
        poll_overlap: float = 10.0,
        flush_interval: float = 5.0,
        unknown_ttl: float = 5.0,
        unknown_limit: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.poll_overlap = timedelta(seconds=poll_overlap)
        self.flush_interval = flush_interval
        self._unknown_ttl = unknown_ttl
        self._unknown_limit = unknown_limit
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._loading: dict[str, asyncio.Future[_Entry | None]] = {}
        self._used: dict[str, float] = {}
        self._cursor: datetime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @classmethod
    def from_url(cls, database_url: str, **options: Any) -> KeyService:
        """A service over ``SqlKeyStore`` for ``database_url`` (SQLite or PostgreSQL)."""
        from ..store.sql import SqlKeyStore

        return cls(SqlKeyStore.from_url(database_url), **options)

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        """Start the revocation poller and the ``last_used_at`` writer (idempotent)."""
        if self._tasks or self._closed:
            return
        self._tasks = [
            asyncio.create_task(self._every(self.poll_interval, self.refresh, "key refresh")),
            asyncio.create_task(self._every(self.flush_interval, self.flush, "last-used flush")),
        ]

    async def aclose(self) -> None:
        """Stop the background tasks, write pending ``last_used_at`` and close the store."""
        if self._closed:
            return
        self._closed = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.flush()
        except StoreUnavailableError as exc:
            log.warning("could not record when keys were last used: %s", exc.message)
        await self.store.aclose()

    # -- the request path ---------------------------------------------------------------

    async def verify(self, secret: str | None) -> KeyContext:
        """The context of a valid key, or ``AuthenticationError`` (401 ``invalid_api_key``)."""
        if not secret:
            raise _missing()
        if not secret.startswith(SECRET_PREFIX) or len(secret) > _MAX_SECRET_LENGTH:
            raise _unknown()
        key_hash = hash_secret(secret)
        entry = self._cache.get(key_hash) or await self._load(key_hash)
        # The lookup is on the digest, not the secret; compare the digest in constant time.
        if entry is None or not hmac.compare_digest(entry.key_hash, key_hash):
            raise _unknown()
        if entry.revoked:
            raise AuthenticationError("This API key has been revoked.")
        now = self._clock()
        if now >= entry.expires:
            raise AuthenticationError("This API key has expired.")
        self._used[entry.context.key_id] = now
        return entry.context

    async def _load(self, key_hash: str) -> _Entry | None:
        deadline = self._unknown.get(key_hash)
        if deadline is not None:
            if deadline > self._clock():
                return None
            del self._unknown[key_hash]
        pending = self._loading.get(key_hash)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(key_hash))
            self._loading[key_hash] = pending
            pending.add_done_callback(lambda done: self._loaded(key_hash, done))
        # Shielded: a caller that goes away does not cancel the load others wait for.
        return await asyncio.shield(pending)

    async def _fetch(self, key_hash: str) -> _Entry | None:
        record = await self.store.key_by_hash(key_hash)
        if record is None:
            self._unknown[key_hash] = self._clock() + self._unknown_ttl
            while len(self._unknown) > self._unknown_limit:
                self._unknown.popitem(last=False)
            return None
        entry = self._cache[key_hash] = _Entry.of(record)
        return entry

    def _loaded(self, key_hash: str, done: asyncio.Future[_Entry | None]) -> None:
        self._loading.pop(key_hash, None)
        if not done.cancelled():
            done.exception()  # retrieved here, so an unawaited failure is not logged twice

    # -- keeping the cache fresh ---------------------------------------------------------

    async def refresh(self) -> int:
        """Apply the key changes made since the last refresh, by any process; returns how many.

        The first call only notes where the changes end: everything cached before it
        was read fresh from the store.
        """
        if self._cursor is None:
            self._cursor = await self.store.latest_key_change() or _EPOCH
            return 0
        recent = datetime.fromtimestamp(self._clock(), UTC) - self.poll_overlap
        changed = await self.store.keys_changed_since(min(self._cursor, recent))
        for record in changed:
            self._apply(record)
        if changed:
            self._cursor = max(self._cursor, changed[-1].updated_at)
        return len(changed)

    def _apply(self, record: KeyRecord) -> None:
        self._unknown.pop(record.key_hash, None)
        if record.key_hash in self._cache:
            self._cache[record.key_hash] = _Entry.of(record)

    async def flush(self) -> None:
        """Write the pending ``last_used_at`` times in one batch."""
        if not self._used:
            return
        used, self._used = self._used, {}
        try:
            await self.store.mark_used(
                {key_id: datetime.fromtimestamp(at, UTC) for key_id, at in used.items()}
            )
        except BaseException:
            for key_id, at in used.items():  # keep them for the next try
                self._used.setdefault(key_id, at)
            raise

    async def _every(self, interval: float, work: Callable[[], Any], what: str) -> None:
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                await work()
            except Exception as exc:
                if not failing:
                    reason = exc.message if isinstance(exc, StoreUnavailableError) else repr(exc)
                    log.warning("%s failed, will retry: %s", what, reason)
                failing = True
            else:
                if failing:
                    log.warning("%s works again", what)
                failing = False

    async def check(self) -> str | None:
        """Readiness: None when the store answers, else a short reason."""
        timeout = _CHECK_TIMEOUT
        try:
            async with asyncio.timeout(timeout):
                await self.store.ping()
        except StoreUnavailableError as exc:
            return exc.message
        except TimeoutError:
            return f"the database did not answer within {timeout:g} s"
        return None

    # -- administration --------------------------------------------------------------------

    async def create_project(
        self,
        name: str,
        *,
        business_unit: str | None = None,
        rpm_limit: int | None = None,
        tpm_limit: int | None = None,
        budget_usd: Decimal | float | None = None,
        budget_period: str | None = None,
        actor: str,
    ) -> ProjectRecord:
        """Create a project; its RPM/TPM limits and budget apply to all its keys together.

        ``business_unit`` puts the project in that unit, which is created if it is new;
        usage reports by business unit add up the unit's projects.
        """
        project = _build(
            NewProject,
            name=name,
            business_unit=business_unit,
            rpm_limit=rpm_limit,
            tpm_limit=tpm_limit,
            budget_usd=budget_usd,
            budget_period=budget_period,
        )
        return await self.store.create_project(project, actor=actor)

    async def list_projects(self, *, actor: str) -> list[ProjectRecord]:
        return await self.store.list_projects(actor=actor)

    async def list_business_units(self, *, actor: str) -> list[BusinessUnitRecord]:
        """Every business unit with its number of projects, by name."""
        return await self.store.list_business_units(actor=actor)

    async def create_key(
        self,
        project: str,
        *,
        name: str | None = None,
        models: Iterable[str] = (),
        rpm_limit: int | None = None,
        tpm_limit: int | None = None,
        budget_usd: Decimal | float | None = None,
        budget_period: str | None = None,
        expires_at: datetime | None = None,
        actor: str,
    ) -> CreatedKey:
        """Create a key of ``project``; an empty ``models`` allows all of the project's."""
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidRequestError("expires_at needs a time zone", param="expires_at")
            if expires_at.timestamp() <= self._clock():
                raise InvalidRequestError("expires_at is in the past", param="expires_at")
        secret = generate_secret()
        new_key = _build(
            NewKey,
            project=project,
            key_hash=hash_secret(secret),
            prefix=secret[:VISIBLE_PREFIX_LENGTH],
            name=name,
            allowed_models=tuple(dict.fromkeys(m for m in models if m)),
            expires_at=expires_at,
            rpm_limit=rpm_limit,
            tpm_limit=tpm_limit,
            budget_usd=budget_usd,
            budget_period=budget_period,
        )
        return CreatedKey(await self.store.create_key(new_key, actor=actor), secret)

    async def list_keys(self, *, project: str | None = None, actor: str) -> list[KeyRecord]:
        return await self.store.list_keys(project=project, actor=actor)

    async def revoke_key(self, key_id: str, *, actor: str) -> KeyRecord:
        """Revoke a key: refused at once here, within seconds on every other replica."""
        record = await self.store.revoke_key(key_id, actor=actor)
        self._apply(record)
        return record

    async def recent_audit(self, limit: int = 100) -> list[AuditEntry]:
        return list(await self.store.recent_audit(limit))


def _build(model: type[M], **fields: Any) -> M:
    """Validate admin input, turning the first problem into one ``InvalidRequestError``."""
    try:
        return model(**fields)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = ".".join(str(part) for part in error["loc"])
        raise InvalidRequestError(
            f"invalid {param}: {error['msg']} (got {error.get('input')!r})", param=param
        ) from None
