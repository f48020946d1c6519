"""The email service: a batch consumer group, its retry tiers, the daily digests, the
unsubscribe endpoint, the preference page and health, over one database (ledger,
preferences, held notices)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr

from fastapi import FastAPI

from gnlc_core.channel import ChannelRuntime
from gnlc_core.db import create_engine, database_url, migrate
from gnlc_core.directory import City
from gnlc_core.ledger import Ledger
from gnlc_core.logs import get_logger
from gnlc_core.receipts import email_recipient
from gnlc_core.retry import RetrySchedule
from gnlc_core.service import tcp_check
from gnlc_core.settings import Settings
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
    runtime = ChannelRuntime(
        settings, CHANNEL, retry_schedule(settings), title="GNLC Notify email consumer"
    )
    broker, topics, directory = runtime.broker, runtime.topics, runtime.directory
    submissions, metrics = runtime.submissions, runtime.metrics

    async def not_submitted(event: Event, city: City) -> bool:
        """Issue-3 rule: a reminder for a city that has submitted is dropped, even in flight."""
        return submissions.still_wanted(event, [city.id])

    bounces = BounceService(settings, directory)  # checks the bounce and DKIM settings
    engine = create_engine(database_url(settings, "email"))
    pool = SmtpPool(settings)
    SmtpPoolMetrics(pool).register(metrics.registry)
    catalogs = Catalogs()
    consumer = EmailConsumer(
        settings,
        broker,
        topics,
        directory,
        pool,
        retrier=runtime.retrier,
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
    runtime.consume(
        consumer, topics=[*topics.domain, *topics.changes], batch_size=settings.email_batch_size
    )
    runtime.every(settings.email_digest_poll_seconds, consumer.send_due_digests, "digests")
    unsubscribe = UnsubscribeState()
    choices = PreferencesState()
    contacts = ContactsApiState()
    resends = ResendApiState(refusal=consumer.refuse_resend, enqueue=consumer.enqueue_resend)

    async def start() -> None:
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
        ledger = Ledger(
            engine, CHANNEL, listeners=runtime.listeners(consumer.subjects, email_recipient)
        )
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

    async def stop() -> None:
        await bounces.stop()
        await pool.close()
        await engine.dispose()

    return runtime.app(
        routers=[
            unsubscribe_router(unsubscribe, catalogs),
            preferences_router(choices, catalogs, public_url=settings.email_public_url),
            *bounces.routers(),
            contacts_api_router(contacts, settings, directory),
            resend_api_router(resends, settings),
        ],
        start=start,
        stop=stop,
        database=engine,
        degraded={"smtp": tcp_check(settings.smtp_host, settings.smtp_port)},
        body_limit=lambda path: MAX_FORM_BYTES if path == PATH else bounces.body_limit(path),
    )
