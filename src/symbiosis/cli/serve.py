"""``symbiosis serve``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from ..config import GatewayConfig
from ..exceptions import ConfigError
from ..settings import Settings
from .db import migrate_quietly


def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML config file (default: $SYMBIOSIS_CONFIG or ./symbiosis.toml)",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 in a container)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            help="Log every request line, with the client address a local proxy sends in "
            "X-Forwarded-For"
        ),
    ] = False,
    migrate: Annotated[
        bool, typer.Option(help="Migrate the database first (safe with several replicas)")
    ] = True,
) -> None:
    """Run the gateway's HTTP server."""
    import uvicorn

    if config is not None:
        if not config.is_file():
            raise ConfigError(f"{config}: config file not found")
        os.environ["SYMBIOSIS_CONFIG"] = str(config)
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    # One INFO line per upstream call costs more CPU than the rest of a request's logging.
    logging.getLogger("httpx").setLevel(
        max(logging.WARNING, logging.getLevelName(settings.log_level))
    )
    # Check the config here, so a mistake is one line before any worker starts.
    if settings.config_path is not None:
        loaded = GatewayConfig.load(settings.config_path)
        typer.echo(
            f"config {settings.config_path}: {len(loaded.providers)} provider(s), "
            f"{len({m.name for m in loaded.models})} model(s)",
            err=True,
        )
    else:
        typer.echo("no config file: the gateway starts with no models", err=True)
    if migrate:
        migrate_quietly(settings.database_url)
    uvicorn.run(
        "symbiosis.gateway:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=access_log,
        proxy_headers=access_log,  # the client address only feeds the access log
        server_header=False,  # names the server software to every client; costs a write
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=30,
    )
