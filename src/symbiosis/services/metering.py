"""Meter one model call: rate limits and budget before, cost and the request log after.

Routes (and provider calls inside ``SymbiosisMiddleware``) wrap each upstream call:

    ticket = await metering.begin(key, deployment, event, prompt_bytes=..., max_output=...)
    ... call the provider ...
    cost = metering.finish(ticket, deployment, usage)   # or metering.fail(ticket, error)

Nothing here touches the database on the way: limits are in-process counters, budgets
are reserved against leased money, and the request log is queued for the batch writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from time import perf_counter

from ..exceptions import SymbiosisError
from ..wire import Usage
from .budgets import BudgetScope, BudgetService, Reservation
from .keys import KeyContext
from .pricing import PricingService
from .ratelimit import Limit, RateLimiter
from .routing import Deployment
from .usage import UsageEvent, UsageRecorder

ZERO = Decimal(0)
COST_QUANTUM = Decimal("1e-10")  # what the database keeps (Numeric(20, 10))
MIN_RESERVATION = COST_QUANTUM  # a spent budget refuses even calls of unknown price
BYTES_PER_TOKEN = 4


@dataclass(slots=True)
class Ticket:
    """What ``begin`` held for one call, to settle exactly once."""

    event: UsageEvent
    started: float
    limits: list[Limit]
    estimated_tokens: int
    reservation: Reservation | None
    headers: dict[str, str] = field(default_factory=dict)
    done: bool = False


class Metering:
    """Composes pricing, rate limits, budgets and the usage recorder for one gateway."""

    def __init__(
        self,
        *,
        pricing: PricingService,
        recorder: UsageRecorder,
        limiter: RateLimiter | None = None,
        budgets: BudgetService | None = None,
        default_output_tokens: int = 1024,
        alert_thresholds: tuple[float, ...] = (0.5, 0.8, 1.0),
    ) -> None:
        self.pricing = pricing
        self.recorder = recorder
        self.limiter = limiter
        self.budgets = budgets
        self.default_output_tokens = default_output_tokens
        self.alert_thresholds = alert_thresholds

    async def begin(
        self,
        key: KeyContext | None,
        deployment: Deployment,
        event: UsageEvent,
        *,
        prompt_bytes: int,
        max_output: int | None,
    ) -> Ticket:
        """Admit the call or raise 429 (``rate_limit_exceeded`` / ``insufficient_quota``).

        A refused call is still logged, as a failed request.
        """
        started = perf_counter()
        if key is not None:
            event.key_id = key.key_id
            event.project_id = key.project_id
        input_tokens = prompt_bytes // BYTES_PER_TOKEN + 1
        output_tokens = max_output or self.default_output_tokens
        estimated = input_tokens + output_tokens
        limits = _limits(key) if key is not None and self.limiter is not None else []
        ticket = Ticket(event, started, limits, 0, None)
        try:
            if limits and self.limiter is not None:
                ticket.headers = self.limiter.admit(limits, estimated)
                ticket.estimated_tokens = estimated
            scopes = (
                _budget_scopes(key, self.alert_thresholds)
                if key is not None and self.budgets is not None
                else []
            )
            if scopes and self.budgets is not None:
                estimate = max(
                    self._price(deployment, input_tokens, output_tokens), MIN_RESERVATION
                )
                ticket.reservation = await self.budgets.reserve(scopes, estimate)
        except SymbiosisError as exc:
            self.fail(ticket, None, exc)
            raise
        return ticket

    def finish(
        self, ticket: Ticket, deployment: Deployment | None, usage: Usage | None
    ) -> Decimal | None:
        """Price the usage, settle limits and budget, queue the log record; the cost."""
        event = ticket.event
        event.add_usage(usage)
        cost = self.pricing.usage_cost(deployment, usage) if deployment and usage else None
        if cost is not None:
            cost = cost.quantize(COST_QUANTUM)
        self._settle(ticket, deployment, cost, event.input_tokens + event.output_tokens)
        return cost

    def fail(
        self,
        ticket: Ticket,
        deployment: Deployment | None,
        error: SymbiosisError,
        usage: Usage | None = None,
    ) -> None:
        """Settle a failed call and log it; ``usage`` the upstream reported is still billed."""
        ticket.event.status = error.status_code
        ticket.event.error_type = error.error_type
        self.finish(ticket, deployment, usage)

    def _settle(
        self, ticket: Ticket, deployment: Deployment | None, cost: Decimal | None, tokens: int
    ) -> None:
        if ticket.done:
            return
        ticket.done = True
        event = ticket.event
        if self.limiter is not None and ticket.limits:
            self.limiter.settle(ticket.limits, ticket.estimated_tokens, tokens)
        if self.budgets is not None and ticket.reservation is not None:
            self.budgets.settle(ticket.reservation, cost or ZERO)
        if deployment is not None:
            event.provider = deployment.provider_name
            event.upstream_model = deployment.upstream_model
        event.cost_usd = cost
        event.latency_ms = (perf_counter() - ticket.started) * 1000
        self.recorder.record(event)

    def _price(self, deployment: Deployment, input_tokens: int, output_tokens: int) -> Decimal:
        cost = self.pricing.cost(
            deployment.provider.type,
            deployment.upstream_model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            input_cost_per_mtok=deployment.input_cost_per_mtok,
            output_cost_per_mtok=deployment.output_cost_per_mtok,
            cached_input_cost_per_mtok=deployment.cached_input_cost_per_mtok,
        )
        return cost if cost is not None else ZERO


def _limits(key: KeyContext) -> list[Limit]:
    limits = []
    if key.rpm_limit is not None or key.tpm_limit is not None:
        limits.append(Limit(f"key:{key.key_id}", key.rpm_limit, key.tpm_limit))
    if key.project_rpm_limit is not None or key.project_tpm_limit is not None:
        limits.append(
            Limit(f"project:{key.project_id}", key.project_rpm_limit, key.project_tpm_limit)
        )
    return limits


def _budget_scopes(key: KeyContext, thresholds: tuple[float, ...]) -> list[BudgetScope]:
    scopes = []
    if key.budget_usd is not None:
        period = key.budget_period or "monthly"
        scopes.append(BudgetScope("key", key.key_id, key.budget_usd, period, thresholds))
    if key.project_budget_usd is not None:
        period = key.project_budget_period or "monthly"
        scopes.append(
            BudgetScope("project", key.project_id, key.project_budget_usd, period, thresholds)
        )
    return scopes


def format_cost(cost: Decimal | None) -> str | None:
    """The ``x-symbiosis-cost`` header value: plain decimal USD, no exponent."""
    if cost is None:
        return None
    text = format(cost.normalize(), "f")
    return text if text != "-0" else "0"
