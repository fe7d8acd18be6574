"""Budgets are money: reserve an estimate before forwarding, settle the real cost after.

Each replica leases slices of a budget's remaining money from the shared ledger and
reserves request estimates against its slice in memory, so the database is consulted
only when a slice runs out, not per request. Near the limit the slices shrink to the
request's own estimate. The ledger never hands out more than ``budget - spent - other
leases``, so total settled spend stays within the budget plus what the estimates in
flight underestimated.

A background ``flush`` reports settled spend every second and keeps the lease alive;
leases of a replica that stops reporting expire (``LEASE_TTL``) and return to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol

from ..exceptions import InsufficientQuotaError
from ._background import STOP_GRACE_SECONDS, BackgroundTask

log = logging.getLogger("symbiosis.budgets")

Period = Literal["daily", "weekly", "monthly", "total"]
LEASE_TTL = timedelta(seconds=30)
ZERO = Decimal(0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def period_start(period: str, now: datetime) -> datetime:
    """The start of the calendar period (UTC) that contains ``now``."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    if period == "total":
        return EPOCH
    raise ValueError(f"unknown budget period {period!r}")


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """One budget a request spends from: a project's or a key's."""

    scope: Literal["project", "key"]
    scope_id: str
    amount_usd: Decimal
    period: Period
    thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """What the ledger answered: the lease now held, and the scope's spend so far."""

    leased: Decimal
    spent: Decimal


class BudgetLedger(Protocol):
    """The shared record of spend and leases (SQL for many replicas, memory for one)."""

    async def sync(
        self,
        scope: BudgetScope,
        start: datetime,
        replica: str,
        settled: Decimal,
        keep: Decimal,
        want: Decimal,
    ) -> LeaseGrant:
        """Atomically add ``settled`` to spent and set this replica's lease to
        ``keep + granted``, where ``granted <= want`` fits in what is left of the budget.
        """

    async def fire_alert(self, scope: BudgetScope, start: datetime, threshold: float) -> bool:
        """Mark a threshold alert as sent for this period; False if it already was."""


@dataclass(slots=True)
class _Account:
    """This replica's view of one budget period."""

    scope: BudgetScope
    start: datetime
    available: Decimal = ZERO  # leased, not reserved
    in_flight: Decimal = ZERO  # reserved by requests still running
    settled: Decimal = ZERO  # spent, not yet reported to the ledger
    spent: Decimal = ZERO  # the ledger's figure at the last sync
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class Reservation:
    """Money held for one request; settle it exactly once."""

    holds: list[tuple[_Account, Decimal]]
    settled: bool = False


AlertHook = Callable[[BudgetScope, float, Decimal], None]


class BudgetService:
    def __init__(
        self,
        ledger: BudgetLedger,
        *,
        replica: str,
        slice_fraction: float = 0.1,
        interval: float = 1.0,
        on_alert: AlertHook | None = None,
    ) -> None:
        self._ledger = ledger
        self._replica = replica
        self._fraction = Decimal(str(slice_fraction))
        self._interval = interval
        self._on_alert = on_alert
        self._accounts: dict[tuple[str, str, datetime], _Account] = {}
        self._task = BackgroundTask("symbiosis-budgets", self._run)
        self._stopping = asyncio.Event()

    async def reserve(self, scopes: Sequence[BudgetScope], estimate: Decimal) -> Reservation:
        """Hold ``estimate`` in every scope, or raise 429 ``insufficient_quota``."""
        now = datetime.now(UTC)
        holds: list[tuple[_Account, Decimal]] = []
        try:
            for scope in scopes:
                account = self._account(scope, now)
                if account.available < estimate:
                    await self._lease(account, estimate)
                account.available -= estimate
                account.in_flight += estimate
                holds.append((account, estimate))
        except InsufficientQuotaError:
            self._release(holds)
            raise
        return Reservation(holds)

    def settle(self, reservation: Reservation, cost: Decimal) -> None:
        """Replace the held estimate by the real cost; the rest goes back to the lease."""
        if reservation.settled:
            return
        reservation.settled = True
        for account, held in reservation.holds:
            account.in_flight -= held
            account.available += held - cost
            account.settled += cost

    def _release(self, holds: list[tuple[_Account, Decimal]]) -> None:
        for account, held in holds:
            account.in_flight -= held
            account.available += held

    def _account(self, scope: BudgetScope, now: datetime) -> _Account:
        start = period_start(scope.period, now)
        key = (scope.scope, scope.scope_id, start)
        account = self._accounts.get(key)
        if account is None or account.scope != scope:
            account = self._accounts[key] = _Account(scope, start)
        return account

    async def _lease(self, account: _Account, estimate: Decimal) -> None:
        async with account.lock:
            if account.available >= estimate:  # another request leased meanwhile
                return
            remaining = account.scope.amount_usd - account.spent - account.settled
            want = max(estimate - account.available, remaining * self._fraction)
            await self._sync(account, want)
            if account.available < estimate:
                raise InsufficientQuotaError(
                    f"The {account.scope.scope} budget of ${account.scope.amount_usd} "
                    f"({account.scope.period}) is spent. Ask for more credit or wait for the "
                    "next period."
                )

    async def _sync(self, account: _Account, want: Decimal) -> None:
        settled = account.settled
        keep = max(ZERO, account.available + account.in_flight)
        grant = await self._ledger.sync(
            account.scope, account.start, self._replica, settled, keep, want
        )
        # Requests may have reserved or settled during the await: apply deltas only.
        account.settled -= settled
        account.available += grant.leased - keep
        account.spent = grant.spent
        await self._alerts(account)

    async def _alerts(self, account: _Account) -> None:
        scope = account.scope
        if scope.amount_usd <= 0:
            return
        used = float((account.spent + account.settled) / scope.amount_usd)
        for threshold in scope.thresholds:
            if used >= threshold and await self._ledger.fire_alert(scope, account.start, threshold):
                log.warning(
                    "budget alert: %s %s crossed %d%% of $%s (%s)",
                    scope.scope,
                    scope.scope_id,
                    round(threshold * 100),
                    scope.amount_usd,
                    scope.period,
                    extra={"event": "budget_alert", "scope": scope.scope,
                           "scope_id": scope.scope_id, "threshold": threshold,
                           "spent_usd": str(account.spent + account.settled)},
                )  # fmt: skip
                if self._on_alert is not None:
                    self._on_alert(scope, threshold, account.spent + account.settled)

    async def flush(self) -> None:
        """Report settled spend and renew leases; drop accounts of past periods."""
        now = datetime.now(UTC)
        for key, account in list(self._accounts.items()):
            stale = account.start != period_start(account.scope.period, now)
            if account.settled or not stale or account.in_flight:
                async with account.lock:
                    await self._sync(account, ZERO)
            if stale and not account.in_flight:
                with contextlib.suppress(Exception):
                    await self._ledger.sync(
                        account.scope, account.start, self._replica, ZERO, ZERO, ZERO
                    )
                del self._accounts[key]

    async def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        """Report what was spent and give unused leases back.

        A sync under way is let finish: cancelled after its commit, its spend would
        still count as unreported and be reported twice.
        """
        self._stopping.set()
        await self._task.finish(STOP_GRACE_SECONDS)
        for account in list(self._accounts.values()):
            async with account.lock:
                account.available = ZERO
                with contextlib.suppress(Exception):
                    await self._sync(account, ZERO)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            if self._stopping.is_set():
                return  # stop() reports the rest
            started = time.monotonic()
            try:
                await self.flush()
            except Exception as exc:
                log.warning("budget sync failed (will retry): %s", exc)
            log.debug("budget flush took %.1f ms", (time.monotonic() - started) * 1000)
