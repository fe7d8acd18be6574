"""Budget ledgers: the shared record of spend and per-replica leases.

``MemoryBudgetLedger`` serves one process; ``SqlBudgetLedger`` lets replicas sharing one
database lease slices of the same budget without over-committing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..services.budgets import LEASE_TTL, ZERO, BudgetScope, LeaseGrant
from ._upsert import insert_for
from .engine import create_sessionmaker
from .tables import BudgetAlert, BudgetLease, SpendCounter


def _fit(budget: Decimal, spent: Decimal, others: Decimal, keep: Decimal, want: Decimal) -> Decimal:
    """How much of ``want`` still fits beside what is spent and leased."""
    free = budget - spent - others - keep
    return max(ZERO, min(want, free))


@dataclass
class _Period:
    spent: Decimal = ZERO
    leases: dict[str, tuple[Decimal, datetime]] = field(default_factory=dict)
    alerts: set[float] = field(default_factory=set)


class MemoryBudgetLedger:
    """One process's ledger: spend lives as long as the process."""

    def __init__(self) -> None:
        self._periods: dict[tuple[str, str, datetime], _Period] = {}

    async def sync(
        self,
        scope: BudgetScope,
        start: datetime,
        replica: str,
        settled: Decimal,
        keep: Decimal,
        want: Decimal,
    ) -> LeaseGrant:
        now = datetime.now(UTC)
        period = self._periods.setdefault((scope.scope, scope.scope_id, start), _Period())
        period.spent += settled
        others = sum(
            (amount for rid, (amount, seen) in period.leases.items()
             if rid != replica and now - seen < LEASE_TTL),
            ZERO,
        )  # fmt: skip
        granted = _fit(scope.amount_usd, period.spent, others, keep, want)
        period.leases[replica] = (keep + granted, now)
        return LeaseGrant(leased=keep + granted, spent=period.spent)

    async def fire_alert(self, scope: BudgetScope, start: datetime, threshold: float) -> bool:
        period = self._periods.setdefault((scope.scope, scope.scope_id, start), _Period())
        if threshold in period.alerts:
            return False
        period.alerts.add(threshold)
        return True

    def spent(self, scope: str, scope_id: str, start: datetime) -> Decimal:
        period = self._periods.get((scope, scope_id, start))
        return period.spent if period else ZERO


class SqlBudgetLedger:
    """Spend and leases in the shared database; one short transaction per sync.

    The spend-counter row is locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite takes
    its write lock at the first insert), so replicas leasing at once are serialised and
    the sum of leases and spend never passes the budget.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = create_sessionmaker(engine)

    async def sync(
        self,
        scope: BudgetScope,
        start: datetime,
        replica: str,
        settled: Decimal,
        keep: Decimal,
        want: Decimal,
    ) -> LeaseGrant:
        now = datetime.now(UTC)
        where = (
            SpendCounter.scope == scope.scope,
            SpendCounter.scope_id == scope.scope_id,
            SpendCounter.period_start == start,
        )
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert_for(session, SpendCounter)
                .values(scope=scope.scope, scope_id=scope.scope_id, period_start=start,
                        spent_usd=ZERO, reserved_usd=ZERO, updated_at=now)
                .on_conflict_do_nothing()
            )  # fmt: skip
            counter = (
                await session.execute(select(SpendCounter).where(*where).with_for_update())
            ).scalar_one()
            spent = counter.spent_usd + settled
            others = (
                await session.execute(
                    select(func.coalesce(func.sum(BudgetLease.amount_usd), 0)).where(
                        BudgetLease.scope == scope.scope,
                        BudgetLease.scope_id == scope.scope_id,
                        BudgetLease.period_start == start,
                        BudgetLease.replica != replica,
                        BudgetLease.heartbeat_at > now - LEASE_TTL,
                    )
                )
            ).scalar_one()
            granted = _fit(scope.amount_usd, spent, Decimal(others), keep, want)
            leased = keep + granted
            await session.execute(
                update(SpendCounter)
                .where(*where)
                .values(spent_usd=spent, reserved_usd=Decimal(others) + leased, updated_at=now)
            )
            lease = {"scope": scope.scope, "scope_id": scope.scope_id, "period_start": start,
                     "replica": replica, "amount_usd": leased, "heartbeat_at": now}  # fmt: skip
            await session.execute(
                insert_for(session, BudgetLease)
                .values(**lease)
                .on_conflict_do_update(
                    index_elements=["scope", "scope_id", "period_start", "replica"],
                    set_={"amount_usd": leased, "heartbeat_at": now},
                )
            )
        return LeaseGrant(leased=leased, spent=spent)

    async def fire_alert(self, scope: BudgetScope, start: datetime, threshold: float) -> bool:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                insert_for(session, BudgetAlert)
                .values(scope=scope.scope, scope_id=scope.scope_id, period_start=start,
                        threshold=threshold, fired_at=datetime.now(UTC))
                .on_conflict_do_nothing()
            )  # fmt: skip
        return bool(result.rowcount)
