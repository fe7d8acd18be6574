"""Budget ledgers: the shared record of spend and per-replica leases.

``MemoryBudgetLedger`` serves one process; ``SqlBudgetLedger`` lets replicas sharing one
database lease slices of the same budget without over-committing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from ..services.budgets import LEASE_TTL, ZERO, BudgetScope, LeaseGrant


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
