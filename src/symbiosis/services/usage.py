"""What one request used, and where it goes once the request is done."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from ..wire import Usage


@dataclass(slots=True)
class UsageEvent:
    """The facts of one finished request, successful or not: one request-log row."""

    request_id: str
    model: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    key_id: str | None = None
    project_id: str | None = None
    end_user: str | None = None
    client: str | None = None
    user_agent: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    stream: bool = False
    status: int = 200
    error_type: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal | None = None
    request_body: str | None = None
    response_body: str | None = None

    def add_usage(self, usage: Usage | None) -> None:
        if usage is None:
            return
        self.input_tokens = usage.prompt_tokens
        self.output_tokens = usage.completion_tokens
        self.cached_tokens = usage.cached_tokens
        self.cache_write_tokens = usage.cache_write_tokens

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UsageEvent:
        """The inverse of ``dataclasses.asdict`` after a JSON round trip (the disk spool)."""
        data = dict(data)
        data["at"] = datetime.fromisoformat(data["at"])
        if data.get("cost_usd") is not None:
            data["cost_usd"] = Decimal(data["cost_usd"])
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


class UsageRecorder(Protocol):
    """Receives every finished request; must never block or fail the request path."""

    def record(self, event: UsageEvent) -> None: ...


@dataclass(slots=True)
class UsageTotals:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(slots=True)
class MemoryUsageRecorder:
    """Keeps running totals per model in memory: enough for the demo and for tests."""

    by_model: dict[str, UsageTotals] = field(default_factory=dict)
    events: list[UsageEvent] = field(default_factory=list)
    keep_events: int = 1000

    def record(self, event: UsageEvent) -> None:
        totals = self.by_model.setdefault(event.model, UsageTotals())
        totals.requests += 1
        totals.errors += event.status >= 400
        totals.input_tokens += event.input_tokens
        totals.output_tokens += event.output_tokens
        totals.cost_usd += event.cost_usd or 0
        self.events.append(event)
        if len(self.events) > self.keep_events:
            del self.events[: len(self.events) - self.keep_events]
