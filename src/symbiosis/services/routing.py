"""Client-facing model names to the deployments that serve them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..exceptions import ModelNotFoundError
from ..providers import Provider


@dataclass(frozen=True, slots=True)
class Deployment:
    """One place a model is served: a provider and the model (or deployment) name there."""

    name: str
    provider_name: str
    provider: Provider
    upstream_model: str
    input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None
    cached_input_cost_per_mtok: float | None = None


class ModelRouter:
    """Round-robins over the deployments of each model name; groups share the load."""

    def __init__(self, deployments: Iterable[Deployment]) -> None:
        groups: dict[str, list[Deployment]] = {}
        for deployment in deployments:
            groups.setdefault(deployment.name, []).append(deployment)
        self._groups: Mapping[str, tuple[Deployment, ...]] = {
            name: tuple(group) for name, group in groups.items()
        }
        self._cycles: dict[str, Iterator[Deployment]] = {
            name: itertools.cycle(group) for name, group in self._groups.items()
        }

    @property
    def deployments(self) -> list[Deployment]:
        return [d for group in self._groups.values() for d in group]

    @property
    def model_names(self) -> list[str]:
        return sorted(self._groups)

    def __contains__(self, model: str) -> bool:
        return model in self._groups

    def candidates(self, model: str) -> list[Deployment]:
        """Every deployment of ``model``, the next in turn first, the others as fallbacks."""
        group = self._groups.get(model)
        if group is None:
            raise ModelNotFoundError(
                f"The model '{model}' does not exist or is not served by this gateway",
                param="model",
            )
        first = next(self._cycles[model])
        if len(group) == 1:
            return [first]
        return [first, *(d for d in group if d is not first)]
