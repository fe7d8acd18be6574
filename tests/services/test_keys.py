"""KeyService on real databases: secrets, the cache, revocation across replicas, batching."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import event, text
from tests._db import POSTGRES_ADMIN_URL

from symbiosis.exceptions import AuthenticationError, InvalidRequestError
from symbiosis.services.keys import (
    KeyService,
    bound_key,
    current_key,
    generate_secret,
    hash_secret,
)
from symbiosis.store.base import NewKey, StoreUnavailableError
from symbiosis.store.migrate import upgrade
from symbiosis.store.sql import SqlKeyStore

ACTOR = "test:alice"


@contextmanager
def statements(keys: KeyService) -> Iterator[list[str]]:
    """Every SQL statement the service's engine sends while the block runs."""
    assert isinstance(keys.store, SqlKeyStore)
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    engine = keys.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
async def idle_keys(migrated_url: str) -> AsyncIterator[KeyService]:
    """A service that is not started: no poller, so every statement counted is ours."""
    keys = KeyService.from_url(migrated_url)
    yield keys
    await keys.aclose()


async def _eventually(check: Callable[[], object], within: float = 5.0) -> float:
    """Seconds until ``check()`` stops raising; fails after ``within``."""
    started = time.monotonic()
    while True:
        try:
            check_result = check()
            if asyncio.iscoroutine(check_result):
                await check_result
            return time.monotonic() - started
        except (AssertionError, AuthenticationError, pytest.fail.Exception):  # not yet
            if time.monotonic() - started > within:
                raise
            await asyncio.sleep(0.02)


def test_secrets_carry_32_random_bytes_behind_a_prefix() -> None:
    secret = generate_secret()
    assert secret.startswith("sk-sym-")
    token = secret.removeprefix("sk-sym-")
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert len({generate_secret() for _ in range(100)}) == 100
    assert hash_secret(secret) == hashlib.sha256(secret.encode()).hexdigest()


async def test_only_the_hash_and_a_short_prefix_are_stored(key_service: KeyService) -> None:
    await key_service.create_project("p", actor=ACTOR)
    created = await key_service.create_key("p", name="ci", actor=ACTOR)
    assert isinstance(key_service.store, SqlKeyStore)
    async with key_service.store.engine.connect() as connection:
        row = (await connection.execute(text("SELECT * FROM virtual_keys"))).one()
    assert created.secret not in repr(tuple(row))
    assert row.key_hash == hash_secret(created.secret)
    assert row.prefix == created.secret[:12] == created.key.prefix
    context = await key_service.verify(created.secret)
    assert (context.key_id, context.project_name, context.key_name) == (created.key.id, "p", "ci")


async def test_steady_state_verification_never_touches_the_database(idle_keys: KeyService) -> None:
    await idle_keys.create_project("p", actor=ACTOR)
    secret = (await idle_keys.create_key("p", actor=ACTOR)).secret
    with statements(idle_keys) as first:
        await idle_keys.verify(secret)
    assert len(first) == 1
    with statements(idle_keys) as steady:
        for _ in range(200):
            await idle_keys.verify(secret)
    assert steady == []


async def test_concurrent_misses_share_one_load(idle_keys: KeyService) -> None:
    await idle_keys.create_project("p", actor=ACTOR)
    secret = (await idle_keys.create_key("p", actor=ACTOR)).secret
    with statements(idle_keys) as seen:
        contexts = await asyncio.gather(*(idle_keys.verify(secret) for _ in range(20)))
    assert len({c.key_id for c in contexts}) == 1
    assert len(seen) == 1


async def test_unknown_secrets_are_remembered_briefly(idle_keys: KeyService) -> None:
    unknown = generate_secret()
    with statements(idle_keys) as seen:
        for _ in range(3):
            with pytest.raises(AuthenticationError, match="Incorrect API key"):
                await idle_keys.verify(unknown)
        with pytest.raises(AuthenticationError, match="Incorrect API key"):
            await idle_keys.verify("not-even-our-format")
    assert len(seen) == 1  # one lookup; the malformed key never reaches the database


@pytest.mark.parametrize("secret", [None, ""])
async def test_a_missing_key_is_401(idle_keys: KeyService, secret: str | None) -> None:
    with pytest.raises(AuthenticationError, match="didn't provide an API key") as caught:
        await idle_keys.verify(secret)
    assert (caught.value.status_code, caught.value.code) == (401, "invalid_api_key")


async def test_revoked_and_expired_keys_are_401(migrated_url: str) -> None:
    now = [time.time()]
    keys = KeyService.from_url(migrated_url, clock=lambda: now[0])
    try:
        await keys.create_project("p", actor=ACTOR)
        soon = datetime.fromtimestamp(now[0], UTC) + timedelta(seconds=30)
        expiring = await keys.create_key("p", expires_at=soon, actor=ACTOR)
        revoked = await keys.create_key("p", actor=ACTOR)
        await keys.verify(expiring.secret)
        await keys.verify(revoked.secret)

        await keys.revoke_key(revoked.key.id, actor=ACTOR)
        with pytest.raises(AuthenticationError, match="revoked") as caught:
            await keys.verify(revoked.secret)
        assert caught.value.code == "invalid_api_key"

        now[0] += 31
        with pytest.raises(AuthenticationError, match="expired"):
            await keys.verify(expiring.secret)
    finally:
        await keys.aclose()


async def test_a_revoke_reaches_another_replica_within_seconds(migrated_url: str) -> None:
    replicas = [KeyService.from_url(migrated_url, poll_interval=0.1) for _ in range(2)]
    admin = KeyService.from_url(migrated_url)  # like the CLI: another process, never started
    try:
        for replica in replicas:
            await replica.start()
        await admin.create_project("p", actor=ACTOR)
        created = await admin.create_key("p", actor=ACTOR)
        for replica in replicas:
            await replica.verify(created.secret)
        await asyncio.sleep(0.25)  # both pollers have their bearings

        await admin.revoke_key(created.key.id, actor=ACTOR)

        async def refused_everywhere() -> None:
            for replica in replicas:
                with pytest.raises(AuthenticationError, match="revoked"):
                    await replica.verify(created.secret)

        assert await _eventually(refused_everywhere, within=5.0) < 5.0
    finally:
        for service in (*replicas, admin):
            await service.aclose()


async def test_a_new_key_clears_a_remembered_miss(key_service: KeyService) -> None:
    await key_service.create_project("p", actor=ACTOR)
    secret = generate_secret()
    with pytest.raises(AuthenticationError):
        await key_service.verify(secret)
    # Stored by another process: only the poller can tell this one about it.
    other = KeyService(key_service.store)
    new_key = NewKey(project="p", key_hash=hash_secret(secret), prefix=secret[:12])
    await other.store.create_key(new_key, actor=ACTOR)

    async def accepted() -> None:
        await key_service.verify(secret)

    assert await _eventually(accepted, within=3.0) < 3.0


async def test_last_use_is_written_in_batches(key_service: KeyService) -> None:
    await key_service.create_project("p", actor=ACTOR)
    created = await key_service.create_key("p", actor=ACTOR)
    before = datetime.now(UTC)
    with statements(key_service) as seen:
        for _ in range(50):
            await key_service.verify(created.secret)
        await key_service.flush()
    updates = [s for s in seen if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) <= 1
    record = await key_service.store.key_by_hash(created.key.key_hash)
    assert record is not None
    assert record.last_used_at is not None
    assert record.last_used_at >= before - timedelta(seconds=1)
    assert record.updated_at == created.key.updated_at  # polling does not see use as change


@pytest.mark.postgres
async def test_cached_keys_outlive_a_database_outage(postgres_url: str) -> None:
    await upgrade(postgres_url)
    keys = KeyService.from_url(postgres_url, poll_interval=0.05)
    try:
        await keys.start()
        await keys.create_project("p", actor=ACTOR)
        secret = (await keys.create_key("p", actor=ACTOR)).secret
        await keys.verify(secret)
        assert await keys.check() is None

        name = postgres_url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()

        await keys.verify(secret)  # from the cache
        with pytest.raises(StoreUnavailableError) as unknown:  # a new key cannot be checked
            await keys.verify(generate_secret())
        assert unknown.value.status_code == 503
        with pytest.raises(StoreUnavailableError):
            await keys.refresh()
        reason = await keys.check()
        assert reason is not None
        assert "does not exist" in reason
        await asyncio.sleep(0.2)  # the poller keeps failing quietly, and keeps running
        assert keys.started
    finally:
        await keys.aclose()


async def test_readiness_names_a_missing_schema(database_url: str) -> None:
    keys = KeyService.from_url(database_url)
    try:
        reason = await keys.check()
    finally:
        await keys.aclose()
    assert reason is not None
    assert "symbiosis db migrate" in reason


async def test_administrative_input_is_checked(idle_keys: KeyService) -> None:
    with pytest.raises(InvalidRequestError, match="budget_period"):
        await idle_keys.create_project("p", budget_usd=5, budget_period="hourly", actor=ACTOR)
    with pytest.raises(InvalidRequestError, match="budget_usd"):
        await idle_keys.create_project("p", budget_usd=-1, actor=ACTOR)
    await idle_keys.create_project("p", actor=ACTOR)
    past = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(InvalidRequestError, match="in the past"):
        await idle_keys.create_key("p", expires_at=past, actor=ACTOR)
    with pytest.raises(InvalidRequestError, match="rpm_limit"):
        await idle_keys.create_key("p", rpm_limit=0, actor=ACTOR)
    created = await idle_keys.create_key("p", models=["b", "a", "b", ""], actor=ACTOR)
    assert created.key.allowed_models == ("b", "a")
    audit = await idle_keys.recent_audit()
    assert [(e.action, e.actor) for e in audit[:2]] == [
        ("key.create", ACTOR),
        ("project.create", ACTOR),
    ]


async def test_the_key_context_carries_its_projects_rate_limits(idle_keys: KeyService) -> None:
    project = await idle_keys.create_project("p", rpm_limit=600, tpm_limit=90_000, actor=ACTOR)
    assert (project.rpm_limit, project.tpm_limit) == (600, 90_000)
    created = await idle_keys.create_key("p", rpm_limit=60, actor=ACTOR)
    context = await idle_keys.verify(created.secret)
    assert (context.rpm_limit, context.tpm_limit) == (60, None)
    assert (context.project_rpm_limit, context.project_tpm_limit) == (600, 90_000)
    with pytest.raises(InvalidRequestError, match="tpm_limit"):
        await idle_keys.create_project("q", tpm_limit=0, actor=ACTOR)


async def test_the_current_key_is_request_scoped(idle_keys: KeyService) -> None:
    await idle_keys.create_project("p", actor=ACTOR)
    created = await idle_keys.create_key("p", models=["m"], actor=ACTOR)
    context = await idle_keys.verify(created.secret)
    assert current_key() is None
    with bound_key(context):
        assert current_key() is context
        assert context.allows("m")
        assert not context.allows("other")
    assert current_key() is None
