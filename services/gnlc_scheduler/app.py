"""The scheduler service: wires the scheduler, the broker and the HTTP surface."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from gnlc_core.directory import load_csv
from gnlc_core.kafka import make_broker, topics_for
from gnlc_core.service import build_app, health_router
from gnlc_core.settings import Settings
from gnlc_scheduler.api import operator_router
from gnlc_scheduler.deadlines import load_deadlines
from gnlc_scheduler.scheduler import ReminderScheduler


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, client_id="gnlc-scheduler")
    directory = load_csv(settings.directory_path)
    scheduler = ReminderScheduler(
        broker, topics_for(settings), grace=timedelta(seconds=settings.misfire_grace_seconds)
    )

    async def start() -> None:
        scheduler.start()
        if settings.deadlines_path is not None:
            for deadline in load_deadlines(settings.deadlines_path):
                scheduler.add(deadline)

    async def stop() -> None:
        scheduler.shutdown()

    def scheduler_running() -> bool:
        return scheduler.running

    return build_app(
        title="GNLC Notify scheduler",
        settings=settings,
        broker=broker,
        routers=[
            health_router(broker, scheduler_running),
            operator_router(settings, scheduler, directory),
        ],
        on_startup=[start],
        on_shutdown=[stop],
    )
