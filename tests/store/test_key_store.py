"""The KeyStore contract, held by SqlKeyStore (SQLite, PostgreSQL) and MemoryKeyStore alike."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from symbiosis.store.base import (
    KeyNotFoundError,
    KeyStore,
    NewKey,
    NewProject,
    ProjectExistsError,
    ProjectNotFoundError,
)
from symbiosis.store.memory import MemoryKeyStore
from symbiosis.store.sql import SqlKeyStore

from .._db import BACKENDS, migrated_database

ACTOR = "test:alice"


@pytest.fixture(params=["memory", *BACKENDS])
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "memory":
        yield None
        return
    with migrated_database(request.param, request) as url:
        yield url


@pytest.fixture
async def store(store_url: str | None) -> AsyncIterator[KeyStore]:
    if store_url is None:
        yield MemoryKeyStore()
        return
    sql = SqlKeyStore.from_url(store_url)
    yield sql
    await sql.aclose()


def _new_key(project: str, secret: str = "secret", **fields: object) -> NewKey:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return NewKey(project=project, key_hash=digest, prefix=secret[:12], **fields)


async def test_projects_are_unique_and_listed_by_name(store: KeyStore) -> None:
    beta = await store.create_project(
        NewProject(name="beta", budget_usd=Decimal("12.5"), budget_period="weekly"), actor=ACTOR
    )
    await store.create_project(NewProject(name="alpha"), actor=ACTOR)
    with pytest.raises(ProjectExistsError, match="'beta' already exists"):
        await store.create_project(NewProject(name="beta"), actor=ACTOR)

    projects = await store.list_projects(actor=ACTOR)
    assert [p.name for p in projects] == ["alpha", "beta"]
    assert projects[1] == beta
    assert (beta.budget_usd, beta.budget_period) == (Decimal("12.5"), "weekly")
    assert beta.id.startswith("proj_")
    assert beta.created_at.tzinfo is UTC


async def test_a_budget_without_period_is_monthly(store: KeyStore) -> None:
    project = await store.create_project(NewProject(name="p", budget_usd=100), actor=ACTOR)
    assert project.budget_period == "monthly"
    assert (await store.list_projects(actor=ACTOR))[0].budget_period == "monthly"


async def test_keys_round_trip_every_field(store: KeyStore) -> None:
    await store.create_project(NewProject(name="p"), actor=ACTOR)
    expires = datetime(2031, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)
    created = await store.create_key(
        _new_key(
            "p",
            name="ci",
            allowed_models=("gpt", "claude"),
            expires_at=expires,
            rpm_limit=60,
            tpm_limit=10_000,
            budget_usd=Decimal("0.0000015"),
            budget_period="daily",
        ),
        actor=ACTOR,
    )
    found = await store.key_by_hash(created.key_hash)
    assert found == created
    assert found.id.startswith("key_")
    assert found.project_name == "p"
    assert found.allowed_models == ("gpt", "claude")
    assert found.expires_at == expires
    assert found.budget_usd == Decimal("0.0000015")
    assert found.created_at.tzinfo is UTC
    assert found.revoked_at is None
    assert "key_hash" not in found.model_dump()
    assert await store.key_by_hash("0" * 64) is None


async def test_a_key_needs_an_existing_project(store: KeyStore) -> None:
    with pytest.raises(ProjectNotFoundError, match="unknown project 'nope'"):
        await store.create_key(_new_key("nope"), actor=ACTOR)
    with pytest.raises(ProjectNotFoundError):
        await store.list_keys(project="nope", actor=ACTOR)


async def test_keys_are_listed_per_project(store: KeyStore) -> None:
    for name in ("a", "b"):
        await store.create_project(NewProject(name=name), actor=ACTOR)
    first = await store.create_key(_new_key("a", "s1"), actor=ACTOR)
    second = await store.create_key(_new_key("b", "s2"), actor=ACTOR)
    third = await store.create_key(_new_key("a", "s3"), actor=ACTOR)
    assert [k.id for k in await store.list_keys(project="a", actor=ACTOR)] == [first.id, third.id]
    everything = await store.list_keys(project=None, actor=ACTOR)
    assert {k.id for k in everything} == {first.id, second.id, third.id}


async def test_revoking_moves_updated_at_once(store: KeyStore) -> None:
    await store.create_project(NewProject(name="p"), actor=ACTOR)
    key = await store.create_key(_new_key("p"), actor=ACTOR)
    mark = await store.latest_key_change()
    assert mark == key.updated_at

    revoked = await store.revoke_key(key.id, actor=ACTOR)
    assert revoked.revoked_at is not None
    assert revoked.updated_at > key.updated_at
    assert [k.id for k in await store.keys_changed_since(mark)] == [key.id]
    assert await store.keys_changed_since(revoked.updated_at) == []

    again = await store.revoke_key(key.id, actor=ACTOR)
    assert again == revoked  # idempotent: nothing moves
    with pytest.raises(KeyNotFoundError, match="unknown key 'key_nope'"):
        await store.revoke_key("key_nope", actor=ACTOR)


async def test_marking_use_leaves_updated_at_alone(store: KeyStore) -> None:
    await store.create_project(NewProject(name="p"), actor=ACTOR)
    key = await store.create_key(_new_key("p"), actor=ACTOR)
    used = datetime.now(UTC) + timedelta(seconds=1)
    await store.mark_used({key.id: used, "key_gone": used})
    found = await store.key_by_hash(key.key_hash)
    assert found is not None
    assert found.last_used_at == used
    assert found.updated_at == key.updated_at
    assert await store.keys_changed_since(key.updated_at) == []


async def test_every_administrative_action_is_audited(store: KeyStore) -> None:
    project = await store.create_project(NewProject(name="p", budget_usd=5), actor=ACTOR)
    key = await store.create_key(_new_key("p", name="ci"), actor="test:bob")
    await store.list_projects(actor=ACTOR)
    await store.list_keys(project="p", actor=ACTOR)
    await store.revoke_key(key.id, actor=ACTOR)

    entries = list(reversed(await store.recent_audit()))
    assert [(e.action, e.target_type, e.target_id) for e in entries] == [
        ("project.create", "project", project.id),
        ("key.create", "key", key.id),
        ("project.list", "project", None),
        ("key.list", "key", None),
        ("key.revoke", "key", key.id),
    ]
    assert [e.actor for e in entries][:2] == [ACTOR, "test:bob"]
    assert entries[0].details == {"name": "p", "budget_usd": "5", "budget_period": "monthly"}
    assert entries[1].details == {"project": "p", "name": "ci", "prefix": "secret"}
    assert all(e.at.tzinfo is UTC for e in entries)
    assert len(await store.recent_audit(limit=2)) == 2


async def test_ping_answers_on_a_migrated_database(store: KeyStore) -> None:
    await store.ping()


async def test_concurrent_creates_of_one_project_leave_one(store: KeyStore) -> None:
    results = await asyncio.gather(
        *(store.create_project(NewProject(name="race"), actor=ACTOR) for _ in range(4)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, ProjectExistsError) for r in results if isinstance(r, BaseException))


async def test_keys_carry_their_projects_budget(store: KeyStore) -> None:
    budget = NewProject(name="p", budget_usd=Decimal(250), budget_period="weekly")
    await store.create_project(budget, actor=ACTOR)
    await store.create_project(NewProject(name="free"), actor=ACTOR)
    created = await store.create_key(_new_key("p", "s1"), actor=ACTOR)
    other = await store.create_key(_new_key("free", "s2"), actor=ACTOR)
    assert (created.project_budget_usd, created.project_budget_period) == (250, "weekly")
    assert await store.key_by_hash(created.key_hash) == created
    assert (other.project_budget_usd, other.project_budget_period) == (None, None)
    listed = {k.id: k for k in await store.list_keys(project=None, actor=ACTOR)}
    assert listed[created.id].project_budget_usd == 250


async def test_project_rate_limits_round_trip_into_projects_and_keys(store: KeyStore) -> None:
    limited = NewProject(name="p", rpm_limit=600, tpm_limit=2_000_000)
    project = await store.create_project(limited, actor=ACTOR)
    await store.create_project(NewProject(name="free"), actor=ACTOR)
    assert (project.rpm_limit, project.tpm_limit) == (600, 2_000_000)
    listed = {p.name: p for p in await store.list_projects(actor=ACTOR)}
    assert listed["p"] == project
    assert (listed["free"].rpm_limit, listed["free"].tpm_limit) == (None, None)

    created = await store.create_key(_new_key("p", "s1", rpm_limit=60), actor=ACTOR)
    other = await store.create_key(_new_key("free", "s2"), actor=ACTOR)
    assert (created.rpm_limit, created.tpm_limit) == (60, None)  # the key's own stay apart
    assert (created.project_rpm_limit, created.project_tpm_limit) == (600, 2_000_000)
    assert (other.project_rpm_limit, other.project_tpm_limit) == (None, None)
    assert await store.key_by_hash(created.key_hash) == created
    listed_keys = await store.list_keys(project=None, actor=ACTOR)
    changed = await store.keys_changed_since(datetime(2000, 1, 1, tzinfo=UTC))
    assert {k.id: k for k in listed_keys}[created.id] == created
    assert {k.id: k for k in changed}[created.id] == created
    revoked = await store.revoke_key(created.id, actor=ACTOR)
    assert (revoked.project_rpm_limit, revoked.project_tpm_limit) == (600, 2_000_000)
    audit = (await store.recent_audit())[-1]
    assert audit.details == {"name": "p", "rpm_limit": 600, "tpm_limit": 2_000_000}


@pytest.mark.parametrize("field", ["rpm_limit", "tpm_limit"])
def test_project_rate_limits_are_at_least_one(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        NewProject(name="p", **{field: 0})


async def test_projects_join_business_units_created_on_first_use(store: KeyStore) -> None:
    shop = await store.create_project(NewProject(name="shop", business_unit="retail"), actor=ACTOR)
    search = await store.create_project(
        NewProject(name="search", business_unit="retail"), actor=ACTOR
    )
    lab = await store.create_project(NewProject(name="lab", business_unit="research"), actor=ACTOR)
    solo = await store.create_project(NewProject(name="solo"), actor=ACTOR)

    assert (shop.business_unit, search.business_unit, lab.business_unit) == (
        "retail",
        "retail",
        "research",
    )
    assert (shop.business_unit_id or "").startswith("bu_")
    assert search.business_unit_id == shop.business_unit_id != lab.business_unit_id
    assert (solo.business_unit, solo.business_unit_id) == (None, None)
    listed = {p.name: p for p in await store.list_projects(actor=ACTOR)}
    assert listed == {"shop": shop, "search": search, "lab": lab, "solo": solo}

    units = await store.list_business_units(actor=ACTOR)
    assert [(u.name, u.id, u.project_count) for u in units] == [
        ("research", lab.business_unit_id, 1),
        ("retail", shop.business_unit_id, 2),
    ]
    assert all(u.created_at.tzinfo is UTC for u in units)

    entries = list(reversed(await store.recent_audit()))
    created = [(e.action, e.target_id, dict(e.details)) for e in entries[:6]]
    assert created == [
        ("business_unit.create", shop.business_unit_id, {"name": "retail"}),
        ("project.create", shop.id, {"name": "shop", "business_unit": "retail"}),
        ("project.create", search.id, {"name": "search", "business_unit": "retail"}),
        ("business_unit.create", lab.business_unit_id, {"name": "research"}),
        ("project.create", lab.id, {"name": "lab", "business_unit": "research"}),
        ("project.create", solo.id, {"name": "solo"}),
    ]
    assert (entries[-1].action, entries[-1].details) == ("business_unit.list", {"count": 2})


async def test_a_project_that_exists_leaves_no_new_business_unit(store: KeyStore) -> None:
    await store.create_project(NewProject(name="p"), actor=ACTOR)
    with pytest.raises(ProjectExistsError, match="'p' already exists"):
        await store.create_project(NewProject(name="p", business_unit="new"), actor=ACTOR)
    assert await store.list_business_units(actor=ACTOR) == []
    assert (await store.list_projects(actor=ACTOR))[0].business_unit is None


async def test_concurrent_projects_in_a_new_business_unit_share_it(store: KeyStore) -> None:
    created = await asyncio.gather(
        *(
            store.create_project(NewProject(name=f"p{i}", business_unit="fresh"), actor=ACTOR)
            for i in range(4)
        )
    )
    (unit,) = await store.list_business_units(actor=ACTOR)
    assert (unit.name, unit.project_count) == ("fresh", 4)
    assert {p.business_unit_id for p in created} == {unit.id}
    audit = [e.action for e in await store.recent_audit()]
    assert audit.count("business_unit.create") == 1


def test_a_business_unit_name_is_not_empty() -> None:
    with pytest.raises(ValueError, match="business_unit"):
        NewProject(name="p", business_unit="")
