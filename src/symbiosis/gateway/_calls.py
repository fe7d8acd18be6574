"""What every model route does around the upstream call: fallback and the request's facts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Protocol, TypeVar

from ..exceptions import RateLimitError, UpstreamUnavailableError
from ..services.metering import Ticket, format_cost
from ..services.routing import Deployment

log = logging.getLogger("symbiosis.gateway")
T = TypeVar("T")

_FALLBACK_ON = (UpstreamUnavailableError, RateLimitError)
COST_HEADER = "x-symbiosis-cost"


async def first_available(
    candidates: list[Deployment], call: Callable[[Deployment], Awaitable[T]]
) -> tuple[Deployment, T]:
    """Try each deployment of a group in turn while the upstream is overloaded or down."""
    last = len(candidates) - 1
    for index, deployment in enumerate(candidates):
        try:
            return deployment, await call(deployment)
        except _FALLBACK_ON:
            if index == last:
                raise
            log.warning("deployment %s unavailable, trying the next", deployment.provider_name)
    raise AssertionError("candidates is never empty")  # pragma: no cover


R = TypeVar("R", bound="HasModel")


class HasModel(Protocol):
    model: str


def aimed_at(request: R, deployment: Deployment) -> R:
    """The request with the deployment's upstream model, for the next attempt.

    The parsed request belongs to this call alone, so it is re-aimed in place: a
    pydantic ``model_copy`` per call costs more than the rest of the routing.
    """
    request.model = deployment.upstream_model
    return request


def metered_headers(ticket: Ticket, cost: Decimal | None) -> dict[str, str]:
    """Rate-limit headers, and the cost when the price is known."""
    text = format_cost(cost)
    if text is None:
        return ticket.headers
    return {**ticket.headers, COST_HEADER: text}
