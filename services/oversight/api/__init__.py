"""Oversight's HTTP edge, read only: cases, statistics, the audit trail, the public lookup and
the dashboard, each in its own module. :func:`routes` gathers them for ``create_app()``."""

from fastapi import APIRouter


def routes() -> APIRouter:
    from services.oversight.api import audit, cases, dashboard, health, public, stats

    router = APIRouter()
    for module in (health, cases, stats, audit, public, dashboard):
        router.include_router(module.router)
    return router
