"""Budgets as money: leases, reservations and settlement never over-commit a budget."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from symbiosis.exceptions import InsufficientQuotaError
from symbiosis.services.budgets import BudgetScope, BudgetService, period_start
from symbiosis.store.ledger import MemoryBudgetLedger

D = Decimal


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("daily", datetime(2026, 11, 28, tzinfo=UTC)),
        ("weekly", datetime(2026, 11, 23, tzinfo=UTC)),  # a Monday
        ("monthly", datetime(2026, 11, 1, tzinfo=UTC)),
        ("total", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_calendar_periods_in_utc(period: str, expected: datetime) -> None:
    assert period_start(period, datetime(2026, 11, 28, 17, 5, tzinfo=UTC)) == expected


async def test_reserve_settle_and_refuse_when_spent() -> None:
    ledger = MemoryBudgetLedger()
    service = BudgetService(ledger, replica="r1")
    scope = BudgetScope("key", "k1", D("1.00"), "total")
    for _ in range(4):
        reservation = await service.reserve([scope], D("0.30"))
        service.settle(reservation, D("0.20"))  # real cost below the estimate
    await service.flush()
    assert ledger.spent("key", "k1", period_start("total", datetime.now(UTC))) == D("0.80")
    with pytest.raises(InsufficientQuotaError) as caught:
        await service.reserve([scope], D("0.30"))  # 0.80 + 0.30 > 1.00
    assert caught.value.status_code == 429
    assert caught.value.code == "insufficient_quota"
    small = await service.reserve([scope], D("0.20"))  # but 0.20 still fits
    service.settle(small, D("0.20"))


async def test_refused_reservation_holds_nothing_in_other_scopes() -> None:
    service = BudgetService(MemoryBudgetLedger(), replica="r1")
    roomy = BudgetScope("project", "p", D("100"), "monthly")
    tight = BudgetScope("key", "k", D("0.10"), "monthly")
    with pytest.raises(InsufficientQuotaError, match="key budget"):
        await service.reserve([roomy, tight], D("0.50"))
    reservation = await service.reserve([roomy], D("99.99"))
    service.settle(reservation, D("99.99"))


@pytest.mark.parametrize("replicas", [1, 3])
async def test_concurrent_requests_never_overspend(replicas: int) -> None:
    """40 concurrent requests on a budget worth about 10, over one ledger."""
    ledger = MemoryBudgetLedger()
    services = [BudgetService(ledger, replica=f"r{i}") for i in range(replicas)]
    scope = BudgetScope("project", "p", D("1.00"), "daily")
    estimate = D("0.10")
    served: list[Decimal] = []
    refused = 0

    async def request(service: BudgetService) -> None:
        nonlocal refused
        try:
            reservation = await service.reserve([scope], estimate)
        except InsufficientQuotaError:
            refused += 1
            return
        await asyncio.sleep(random.uniform(0, 0.01))
        cost = estimate * D(random.choice(["0.5", "0.9", "1"]))
        service.settle(reservation, cost)
        served.append(cost)

    await asyncio.gather(*(request(services[i % replicas]) for i in range(40)))
    for service in services:
        await service.flush()
    spent = ledger.spent("project", "p", period_start("daily", datetime.now(UTC)))
    assert spent == sum(served)
    assert spent <= scope.amount_usd  # costs never exceed estimates here
    assert refused >= 30
    assert len(served) >= 10  # the budget is used, not stranded in leases


async def test_alerts_fire_once_per_threshold() -> None:
    fired: list[float] = []
    service = BudgetService(
        MemoryBudgetLedger(), replica="r", on_alert=lambda scope, t, spent: fired.append(t)
    )
    scope = BudgetScope("key", "k", D("1.00"), "monthly")
    for _ in range(9):
        reservation = await service.reserve([scope], D("0.10"))
        service.settle(reservation, D("0.10"))
        await service.flush()
    assert fired == [0.5, 0.8]
    reservation = await service.reserve([scope], D("0.10"))
    service.settle(reservation, D("0.10"))
    await service.flush()
    await service.flush()
    assert fired == [0.5, 0.8, 1.0]


class SlowAckLedger(MemoryBudgetLedger):
    """A database that commits a sync, then is slow to say so."""

    def __init__(self) -> None:
        super().__init__()
        self.committed = asyncio.Event()

    async def sync(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        grant = await super().sync(*args, **kwargs)
        self.committed.set()
        await asyncio.sleep(0.2)
        return grant


async def test_stop_during_a_sync_reports_spend_once() -> None:
    ledger = SlowAckLedger()
    service = BudgetService(ledger, replica="r1", interval=0.01)
    scope = BudgetScope("key", "k1", D("10.00"), "total")
    await service.start()
    reservation = await service.reserve([scope], D("0.50"))
    ledger.committed.clear()
    service.settle(reservation, D("0.40"))
    await asyncio.wait_for(ledger.committed.wait(), 5)  # the periodic sync is under way
    await service.stop()
    assert ledger.spent("key", "k1", period_start("total", datetime.now(UTC))) == D("0.40")
