"""The TOML config file: providers and models, with ``${ENV_VAR}`` substitution.

Every problem stops start-up with one line naming the file, the entry and the problem.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MODEL_KEYS = {
    "name",
    "provider",
    "model",
    "input_cost_per_mtok",
    "output_cost_per_mtok",
    "cached_input_cost_per_mtok",
}


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One deployment of a client-facing model name; entries sharing a name are a group."""

    name: str
    provider: str
    model: str
    input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None
    cached_input_cost_per_mtok: float | None = None


@dataclass(frozen=True, slots=True)
class MeteringConfig:
    """``[request_logs]``, ``[budgets]`` and ``[rate_limits]``: how requests are metered."""

    store_bodies: bool = False
    redact_fields: tuple[str, ...] = ()
    spool_dir: str = "./symbiosis-spool"
    spool_max_mb: int = 512
    default_output_tokens: int = 1024
    alert_thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)
    alert_webhook: str | None = None
    redis_url: str | None = None


_METERING_KEYS: Mapping[str, Mapping[str, type | tuple[type, ...]]] = {
    "request_logs": {"store_bodies": bool, "redact_fields": list, "spool_dir": str,
                     "spool_max_mb": int},
    "budgets": {"default_output_tokens": int, "alert_thresholds": list, "alert_webhook": str},
    "rate_limits": {"redis_url": str},
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    models: tuple[ModelConfig, ...] = ()
    metering: MeteringConfig = field(default_factory=MeteringConfig)
    source: str = "<defaults>"

    @classmethod
    def load(cls, path: Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
        """Read and check a config file."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
        return cls.parse(text, source=str(path), environ=environ)

    @classmethod
    def parse(
        cls, text: str, *, source: str = "<config>", environ: Mapping[str, str] | None = None
    ) -> GatewayConfig:
        """Check a config document; ``source`` names it in error messages."""
        from .providers.registry import provider_class, UnknownProviderTypeError  # noqa: I001

        env = os.environ if environ is None else environ
        _check_duplicate_providers(text, source)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        unknown = sorted(set(data) - {"providers", "models", *_METERING_KEYS})
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {', '.join(unknown)}")
        data = _substitute(data, env, source, path="")

        providers: dict[str, ProviderConfig] = {}
        raw_providers = data.get("providers", {})
        if not isinstance(raw_providers, dict):
            raise ConfigError(f"{source}: [providers] must be a table of provider tables")
        for name, table in raw_providers.items():
            where = f"{source}: providers.{name}"
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: must be a table")
            options = dict(table)
            type_name = options.pop("type", None)
            if not isinstance(type_name, str):
                raise ConfigError(f"{where}: missing 'type'")
            try:
                provider_class(type_name)
            except UnknownProviderTypeError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            providers[name] = ProviderConfig(name=name, type=type_name, options=options)

        raw_models = data.get("models", [])
        if not isinstance(raw_models, list):
            raise ConfigError(f"{source}: models must be an array of tables ([[models]])")
        models = tuple(
            _model(entry, f"{source}: models[{index}]", providers)
            for index, entry in enumerate(raw_models)
        )
        metering = _metering(data, source)
        return cls(providers=providers, models=models, metering=metering, source=source)


_PROVIDER_HEADER = re.compile(
    r'^[ \t]*\[\s*providers\s*\.\s*(?:"([^"]+)"|([A-Za-z0-9_-]+))\s*\]', re.M
)


def _check_duplicate_providers(text: str, source: str) -> None:
    """TOML refuses a repeated ``[providers.X]`` with a cryptic message; say it plainly."""
    seen: dict[str, int] = {}
    for match in _PROVIDER_HEADER.finditer(text):
        name = match.group(1) or match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        if name in seen:
            raise ConfigError(
                f"{source}: providers.{name}: duplicate provider "
                f"(defined at line {seen[name]} and again at line {line})"
            )
        seen[name] = line


def _metering(data: Mapping[str, Any], source: str) -> MeteringConfig:
    values: dict[str, Any] = {}
    for section, keys in _METERING_KEYS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in table.items():
            expected = keys.get(key)
            if expected is None:
                raise ConfigError(
                    f"{source}: {section}.{key}: unknown key (known: {', '.join(sorted(keys))})"
                )
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(
                    f"{source}: {section}.{key}: expected {expected.__name__}, not {value!r}"
                )
            values[key] = tuple(value) if isinstance(value, list) else value
    thresholds = values.get("alert_thresholds", ())
    if any(not isinstance(t, int | float) or not 0 < t <= 10 for t in thresholds):
        raise ConfigError(
            f"{source}: budgets.alert_thresholds: fractions of the budget such as 0.5, 0.8, 1.0"
        )
    return MeteringConfig(**values)


def _model(entry: Any, where: str, providers: Mapping[str, ProviderConfig]) -> ModelConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    name = entry.get("name")
    if isinstance(name, str):
        where = f"{where} ({name})"
    unknown = sorted(set(entry) - _MODEL_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in ("name", "provider"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(f"{where}: missing '{key}'")
    if entry["provider"] not in providers:
        known = ", ".join(sorted(providers)) or "none defined"
        raise ConfigError(
            f"{where}: provider {entry['provider']!r} is not defined (providers: {known})"
        )
    costs: dict[str, float] = {}
    for key in ("input_cost_per_mtok", "output_cost_per_mtok", "cached_input_cost_per_mtok"):
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{where}: {key} must be a number >= 0, not {value!r}")
        costs[key] = float(value)
    upstream = entry.get("model", entry["name"])
    if not isinstance(upstream, str) or not upstream:
        raise ConfigError(f"{where}: 'model' must be a non-empty string")
    return ModelConfig(name=entry["name"], provider=entry["provider"], model=upstream, **costs)


def _substitute(value: Any, env: Mapping[str, str], source: str, path: str) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in env:
                raise ConfigError(f"{source}: {path}: environment variable {var} is not set")
            return env[var]

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {
            k: _substitute(v, env, source, f"{path}.{k}" if path else k) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, env, source, f"{path}[{i}]") for i, v in enumerate(value)]
    return value
