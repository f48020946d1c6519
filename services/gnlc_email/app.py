"""The email service: a batch consumer group, its retry tiers, the daily digests, the
unsubscribe endpoint, the preference page and health, over one database (ledger,
preferences, held notices)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from email.utils import parseaddr

from fastapi import FastAPI

from gnlc_core.db import create_engine, database_url, migrate
from gnlc_core.directory import City
from gnlc_core.kafka import (
    AT_LEAST_ONCE,
    GROUP_HEARTBEAT_MS,
    GROUP_SESSION_MS,
    make_broker,
    topics_for,
)
from gnlc_core.lag import Group, watch_lag
from gnlc_core.ledger import Ledger
from gnlc_core.logs import get_logger
from gnlc_core.membership import Membership
from gnlc_core.metrics import NoticeMetrics, ServiceMetrics
from gnlc_core.receipts import ReceiptPublisher, email_recipient
from gnlc_core.retry import Retrier, RetrySchedule, concurrently
from gnlc_core.service import build_app, health_router, tcp_check
from gnlc_core.settings import Settings
from gnlc_core.views import DirectoryView, SubmissionView
from gnlc_email.bounce_service import BounceService
from gnlc_email.calendar_book import CalendarBook
from gnlc_email.consumer import CHANNEL, EmailConsumer, Event, Services, ShouldSend
from gnlc_email.contacts_api import ContactsApiState, contacts_api_router
from gnlc_email.digest import Timing
from gnlc_email.digest_store import DigestStore
from gnlc_email.i18n import Catalogs
from gnlc_email.metrics import SmtpPoolMetrics
from gnlc_email.preference_page import (
    MAX_FORM_BYTES,
    PATH,
    PreferencesState,
    preferences_router,
    preferences_tokens,
)
from gnlc_email.render import Renderer
from gnlc_email.resend_api import ResendApiState, resend_api_router
from gnlc_email.resend_store import ResendStore
from gnlc_email.sender import SmtpPool
from gnlc_email.store import Preferences, shared_key
from gnlc_email.unsubscribe import Tokens, UnsubscribeState, unsubscribe_router

log = get_logger(__name__)
UNSUBSCRIBE_KEY = "unsubscribe-secret"


def retry_schedule(settings: Settings) -> RetrySchedule:
    return RetrySchedule(
        delays=settings.email_retry_delays_seconds, scale=settings.email_retry_time_scale
    )


def create_app(settings: Settings, *, should_send: ShouldSend | None = None) -> FastAPI:
    metrics = ServiceMetrics("email")
    broker = make_broker(settings, client_id="gnlc-email", middlewares=metrics.broker_middlewares())
    topics = topics_for(settings)
    directory = DirectoryView(settings.kafka_bootstrap_servers, topics.directory)
    submissions = SubmissionView(settings.kafka_bootstrap_servers, topics.deadline_submitted)

    async def not_submitted(event: Event, city: City) -> bool:
        """Issue-3 rule: a reminder for a city that has submitted is dropped, even in flight."""
        return submissions.still_wanted(event, [city.id])

    bounces = BounceService(settings, directory)  # checks the bounce and DKIM settings
    engine = create_engine(database_url(settings, "email"))
    pool = SmtpPool(settings)
    SmtpPoolMetrics(pool).register(metrics.registry)
    notices = NoticeMetrics(metrics.registry)
    catalogs = Catalogs()
    retrier = Retrier(
        broker,
        topics,
        CHANNEL,
        retry_schedule(settings),
        dead_letter_topic=topics.email_dead_letter,
    )
    consumer = EmailConsumer(
        settings,
        broker,
        topics,
        directory,
        pool,
        retrier=retrier,
        renderer=Renderer(
            catalogs,
            domain=settings.message_id_domain,
            organizer=parseaddr(settings.mail_from)[1] or None,
        ),
        should_send=should_send or not_submitted,
        digest_timing=Timing(
            settings.email_digest_time, timedelta(seconds=settings.email_digest_window_seconds)
        ),
        **bounces.consumer_options(),
    )
    membership = Membership()
    broker.subscriber(
        *topics.domain,
        *topics.changes,
        group_id=topics.group(CHANNEL),
        ack_policy=AT_LEAST_ONCE,
        auto_offset_reset="earliest",
        batch=True,
        max_records=settings.email_batch_size,
        listener=membership,
        session_timeout_ms=GROUP_SESSION_MS,
        heartbeat_interval_ms=GROUP_HEARTBEAT_MS,
    )(consumer.handle_batch)
    retrier.subscribe(
        concurrently(consumer.deliver_one, limit=settings.smtp_connections),
        bootstrap_servers=settings.kafka_bootstrap_servers,
    )
    unsubscribe = UnsubscribeState()
    choices = PreferencesState()
    contacts = ContactsApiState()
    resends = ResendApiState(refusal=consumer.refuse_resend, enqueue=consumer.enqueue_resend)
    watch_lag(
        metrics,
        settings.kafka_bootstrap_servers,
        [
            Group(topics.group(CHANNEL), topics.domain),
            Group(topics.group(f"{CHANNEL}-retry"), retrier.topic_names, retry_channel=CHANNEL),
        ],
    )

    digests: set[asyncio.Task[None]] = set()

    async def send_digests() -> None:
        """Every ``GNLC_EMAIL_DIGEST_POLL_SECONDS``, the digests that are due."""
        while True:
            try:
                await consumer.send_due_digests()
            except Exception:  # the database or the broker away: try again next time
                log.exception("digests not sent this time")
            await asyncio.sleep(settings.email_digest_poll_seconds)

    async def start() -> None:
        tiers = asyncio.create_task(retrier.start())  # joins its group meanwhile
        await migrate(engine, "email")
        secrets = [s.get_secret_value() for s in settings.email_unsubscribe_secrets]
        if not secrets:
            secrets = [await shared_key(engine, UNSUBSCRIBE_KEY)]
            log.warning(
                "no GNLC_EMAIL_UNSUBSCRIBE_SECRETS: unsubscribe links are signed with a key "
                "generated once and kept in the database"
            )
        tokens = Tokens(secrets)
        preferences = Preferences(engine)
        unsubscribe.tokens, unsubscribe.preferences = tokens, preferences
        choices.tokens, choices.preferences = preferences_tokens(secrets), preferences
        receipts = ReceiptPublisher(
            broker,
            topics,
            source="/gnlc-notify/email",
            subjects=consumer.subjects,
            recipient_facts=email_recipient,
        )
        ledger = Ledger(engine, CHANNEL, listeners=[notices, receipts])
        await bounces.start(engine, ledger, preferences)
        assert bounces.store is not None
        contacts.preferences, contacts.bounces = preferences, bounces.store
        resends.store = ResendStore(engine, ledger)
        consumer.ready(
            Services(
                ledger,
                preferences,
                tokens,
                bounces.store,
                CalendarBook(engine),
                preference_tokens=choices.tokens,
                digests=DigestStore(engine, ledger),
                resends=resends.store,
            )
        )
        digests.add(asyncio.create_task(send_digests()))
        await tiers

    async def start_views() -> None:
        await directory.start()
        await submissions.start()

    def views_ready() -> bool:
        return directory.ready and submissions.ready

    def consuming() -> bool:
        return membership.joined and retrier.joined

    async def stop() -> None:
        for task in digests:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await bounces.stop()
        await retrier.stop()  # its deliveries in flight finish first (briefly)
        await directory.stop()
        await submissions.stop()
        await pool.close()
        await engine.dispose()

    return build_app(
        title="GNLC Notify email consumer",
        settings=settings,
        broker=broker,
        routers=[
            health_router(
                broker,
                views_ready,
                consuming,
                database=engine,
                degraded={"smtp": tcp_check(settings.smtp_host, settings.smtp_port)},
            ),
            unsubscribe_router(unsubscribe, catalogs),
            preferences_router(choices, catalogs, public_url=settings.email_public_url),
            *bounces.routers(),
            contacts_api_router(contacts, settings, directory),
            resend_api_router(resends, settings),
        ],
        before_consuming=[start_views],
        on_startup=[start],
        on_shutdown=[stop],
        extra_topics=retrier.topic_names,
        body_limit=lambda path: MAX_FORM_BYTES if path == PATH else bounces.body_limit(path),
        metrics=metrics,
    )
