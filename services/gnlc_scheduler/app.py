"""The scheduler service: wires state, dispatcher, broker and the HTTP surface."""

from __future__ import annotations

from fastapi import FastAPI

from gnlc_core.answers import answer_errors
from gnlc_core.db import create_engine, database_url
from gnlc_core.kafka import AT_LEAST_ONCE, make_broker, topics_for
from gnlc_core.lag import Group, watch_lag
from gnlc_core.limits import BodyLimit
from gnlc_core.metrics import ServiceMetrics
from gnlc_core.service import build_app, health_router
from gnlc_core.settings import Settings
from gnlc_scheduler.api import operator_router
from gnlc_scheduler.limits import body_limit_for
from gnlc_scheduler.metrics import SchedulerMetrics
from gnlc_scheduler.service import SchedulerService


def create_app(settings: Settings) -> FastAPI:
    metrics = ServiceMetrics("scheduler")
    broker = make_broker(
        settings, client_id="gnlc-scheduler", middlewares=metrics.broker_middlewares()
    )
    topics = topics_for(settings)
    engine = create_engine(database_url(settings, "scheduler"))
    own = SchedulerMetrics(metrics, engine)
    service = SchedulerService(settings, broker, topics, engine, on_emitted=own.emitted)
    watch_lag(
        metrics,
        settings.kafka_bootstrap_servers,
        [Group(topics.group("scheduler"), [topics.deadline_submitted])],
    )
    broker.subscriber(
        topics.deadline_submitted,
        group_id=topics.group("scheduler"),
        ack_policy=AT_LEAST_ONCE,
        auto_offset_reset="earliest",
    )(service.on_submission)

    def dispatcher_running() -> bool:
        return service.ready

    return build_app(
        title="GNLC Notify scheduler",
        settings=settings,
        broker=broker,
        routers=[
            health_router(broker, dispatcher_running, database=engine),
            operator_router(settings, service),
        ],
        on_startup=[service.start],
        on_shutdown=[service.stop],
        body_limit=body_limit_for,
        metrics=metrics,
    )


def harden(app: FastAPI) -> None:
    """What ``build_app`` adds to the API, for an app built without it (tests): bodies
    limited by path before they are read (413), and every service's error shapes."""
    app.add_middleware(BodyLimit, limit_for=body_limit_for)
    answer_errors(app)
