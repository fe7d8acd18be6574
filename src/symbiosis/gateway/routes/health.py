"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.responses import JSONResponse

ReadinessCheck = Callable[[], Awaitable[str | None]]


def health_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    """``checks`` return None when healthy, or a short reason when not."""
    router = APIRouter(tags=["health"])

    @router.get("/health/live", summary="The process is up")
    async def live() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/health/ready", summary="Dependencies answer; safe to route traffic here")
    async def ready() -> JSONResponse:
        problems = {name: reason for name, check in checks.items() if (reason := await check())}
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ok", "checks": sorted(checks)})

    return router
