"""The gateway's live parts, built once from settings and config, started on first use."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from ..config import GatewayConfig
from ..exceptions import ConfigError
from ..providers import Provider, create_provider
from ..services.budgets import BudgetLedger, BudgetService
from ..services.keys import KeyService
from ..services.metering import Metering
from ..services.pricing import PricingService
from ..services.ratelimit import RateLimiter
from ..services.redaction import Redactor
from ..services.routing import Deployment, ModelRouter
from ..services.usage import MemoryUsageRecorder, UsageRecorder
from ..settings import Settings

log = logging.getLogger("symbiosis.gateway")


class _Background(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def replica_id() -> str:
    """Names this process in budget leases: host, pid and a random suffix."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{os.urandom(3).hex()}"


@dataclass(slots=True)
class Gateway:
    """Everything a request needs; ``start``/``aclose`` run the background work.

    With no ``keys`` given, keys, budgets and the request log share one database
    (``settings.database_url``). Given a ``keys`` service (tests, embedding), budgets
    live in memory and usage goes to ``usage`` (default: in memory).
    """

    settings: Settings
    config: GatewayConfig
    providers: Mapping[str, Provider]
    router: ModelRouter
    keys: KeyService
    metering: Metering
    redactor: Redactor | None
    background: list[_Background] = field(default_factory=list)
    owned: list[Any] = field(default_factory=list)
    _started: bool = False
    _starting: asyncio.Lock | None = None

    @property
    def started(self) -> bool:
        return self._started

    @property
    def usage(self) -> UsageRecorder:
        return self.metering.recorder

    @classmethod
    def build(
        cls,
        settings: Settings,
        config: GatewayConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        usage: UsageRecorder | None = None,
        keys: KeyService | None = None,
    ) -> Gateway:
        providers = _providers(config, http_client)
        router = ModelRouter(
            Deployment(
                name=model.name,
                provider_name=model.provider,
                provider=providers[model.provider],
                upstream_model=model.model,
                input_cost_per_mtok=model.input_cost_per_mtok,
                output_cost_per_mtok=model.output_cost_per_mtok,
                cached_input_cost_per_mtok=model.cached_input_cost_per_mtok,
            )
            for model in config.models
        )
        background: list[_Background] = []
        owned: list[Any] = []
        ledger: BudgetLedger
        if keys is None:
            from ..services.request_log import RequestLogWriter
            from ..services.spool import DiskSpool
            from ..store.engine import create_engine
            from ..store.ledger import SqlBudgetLedger
            from ..store.request_logs import SqlRequestLogSink
            from ..store.sql import SqlKeyStore

            engine = create_engine(settings.database_url)
            keys = KeyService(SqlKeyStore(engine, owns_engine=True))
            owned.append(keys)
            ledger = SqlBudgetLedger(engine)
            if usage is None:
                spool = DiskSpool(
                    Path(config.metering.spool_dir),
                    max_bytes=config.metering.spool_max_mb * 1024 * 1024,
                )
                usage = writer = RequestLogWriter(SqlRequestLogSink(engine), spool)
                background.append(writer)
        else:
            from ..store.ledger import MemoryBudgetLedger

            ledger = MemoryBudgetLedger()
        limiter = RateLimiter()
        if config.metering.redis_url:
            from ..services.ratelimit_redis import RedisCounterSync

            background.append(RedisCounterSync(limiter, config.metering.redis_url))
        on_alert = None
        if config.metering.alert_webhook:
            from ..services.alerts import WebhookAlerts

            on_alert = WebhookAlerts(config.metering.alert_webhook)
            background.append(on_alert)
        budgets = BudgetService(ledger, replica=replica_id(), on_alert=on_alert)
        background.append(budgets)
        pricing = PricingService()
        metering = Metering(
            pricing=pricing,
            recorder=usage if usage is not None else MemoryUsageRecorder(),
            limiter=limiter,
            budgets=budgets,
            default_output_tokens=config.metering.default_output_tokens,
            alert_thresholds=config.metering.alert_thresholds,
        )
        redactor = Redactor(config.metering.redact_fields) if config.metering.store_bodies else None
        gateway = cls(settings, config, providers, router, keys, metering, redactor)
        gateway.background = background
        gateway.owned = owned
        return gateway

    async def start(self) -> None:
        """Start background work once; safe to call on every request (mounted apps)."""
        if self._started:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._started:
                return
            await self.keys.start()
            for task in self.background:
                await task.start()
            # Loading list prices takes about a second: do it beside serving, not before.
            loop = asyncio.get_running_loop()
            loop.run_in_executor(None, self.metering.pricing.warm, self.router.deployments)
            self._started = True

    async def aclose(self) -> None:
        """Drain the request log, settle budgets, close connections."""
        for task in reversed(self.background):
            try:
                await task.stop()
            except Exception:
                log.exception("stopping %s failed", type(task).__name__)
        for provider in self.providers.values():
            with contextlib.suppress(Exception):
                await provider.aclose()
        for resource in self.owned:
            await resource.aclose()
        self._started = False


def _providers(config: GatewayConfig, http_client: httpx.AsyncClient | None) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    for name, provider_config in config.providers.items():
        try:
            providers[name] = create_provider(
                provider_config.type, provider_config.options, name=name, http_client=http_client
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{config.source}: providers.{name}: {exc}") from None
    return providers
