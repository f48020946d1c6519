"""The scheduler service: wires state, dispatcher, broker and the HTTP surface."""

from __future__ import annotations

from fastapi import FastAPI

from gnlc_core.answers import answer_errors
from gnlc_core.db import create_engine, database_url
from gnlc_core.kafka import AT_LEAST_ONCE, make_broker, topics_for
from gnlc_core.service import build_app, health_router
from gnlc_core.settings import Settings
from gnlc_scheduler.api import operator_router
from gnlc_scheduler.limits import BodyLimit
from gnlc_scheduler.service import SchedulerService


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, client_id="gnlc-scheduler")
    topics = topics_for(settings)
    engine = create_engine(database_url(settings, "scheduler"))
    service = SchedulerService(settings, broker, topics, engine)
    broker.subscriber(
        topics.deadline_submitted,
        group_id=topics.group("scheduler"),
        ack_policy=AT_LEAST_ONCE,
        auto_offset_reset="earliest",
    )(service.on_submission)

    def dispatcher_running() -> bool:
        return service.ready

    app = build_app(
        title="GNLC Notify scheduler",
        settings=settings,
        broker=broker,
        routers=[
            health_router(broker, dispatcher_running, database=engine),
            operator_router(settings, service),
        ],
        on_startup=[service.start],
        on_shutdown=[service.stop],
    )
    harden(app)
    return app


def harden(app: FastAPI) -> None:
    """Bodies limited before they are read (413), and every service's error shapes
    (``gnlc_core.answers``; ``build_app`` installs them too, for apps built without it)."""
    app.add_middleware(BodyLimit)
    answer_errors(app)
