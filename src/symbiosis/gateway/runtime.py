"""The gateway's live parts, built once from settings and config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from ..config import GatewayConfig
from ..exceptions import ConfigError
from ..providers import Provider, create_provider
from ..services.keys import KeyService
from ..services.routing import Deployment, ModelRouter
from ..services.usage import MemoryUsageRecorder, UsageRecorder
from ..settings import Settings


@dataclass(slots=True)
class Gateway:
    settings: Settings
    config: GatewayConfig
    providers: Mapping[str, Provider]
    router: ModelRouter
    usage: UsageRecorder
    keys: KeyService
    owns_keys: bool

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
        """``keys`` defaults to a key service over ``settings.database_url``, owned here."""
        providers: dict[str, Provider] = {}
        for name, provider_config in config.providers.items():
            try:
                providers[name] = create_provider(
                    provider_config.type,
                    provider_config.options,
                    name=name,
                    http_client=http_client,
                )
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{config.source}: providers.{name}: {exc}") from None
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
        return cls(
            settings=settings,
            config=config,
            providers=providers,
            router=router,
            usage=usage if usage is not None else MemoryUsageRecorder(),
            keys=keys if keys is not None else KeyService.from_url(settings.database_url),
            owns_keys=keys is None,
        )

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        if self.owns_keys:
            await self.keys.aclose()
