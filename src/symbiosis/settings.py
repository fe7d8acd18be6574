"""Process settings from the ``SYMBIOSIS_*`` environment; only composition roots read them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .exceptions import ConfigError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./symbiosis.db"
DEFAULT_CONFIG_PATH = Path("symbiosis.toml")
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """What a gateway process needs to start. Build it directly or with ``from_env``."""

    database_url: str = DEFAULT_DATABASE_URL
    config_path: Path | None = None
    admin_token: str | None = None
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    log_level: str = "INFO"
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``SYMBIOSIS_*``; ``./symbiosis.toml`` is the config file when present."""
        env = os.environ if environ is None else environ
        config = env.get("SYMBIOSIS_CONFIG")
        if config:
            config_path: Path | None = Path(config)
        else:
            config_path = DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None
        max_bytes = env.get("SYMBIOSIS_MAX_REQUEST_BYTES")
        try:
            max_request_bytes = int(max_bytes) if max_bytes else DEFAULT_MAX_REQUEST_BYTES
        except ValueError:
            raise ConfigError(
                f"SYMBIOSIS_MAX_REQUEST_BYTES must be a whole number of bytes, not {max_bytes!r}"
            ) from None
        return cls(
            database_url=env.get("SYMBIOSIS_DATABASE_URL") or DEFAULT_DATABASE_URL,
            config_path=config_path,
            admin_token=env.get("SYMBIOSIS_ADMIN_TOKEN") or None,
            oidc_issuer=env.get("SYMBIOSIS_OIDC_ISSUER") or None,
            oidc_audience=env.get("SYMBIOSIS_OIDC_AUDIENCE") or None,
            log_level=(env.get("SYMBIOSIS_LOG_LEVEL") or "INFO").upper(),
            max_request_bytes=max_request_bytes,
        )
