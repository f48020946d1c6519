"""Settings from the environment (12-factor): one class, every field documented.

Every variable is prefixed ``GNLC_``; ``KAFKA_BOOTSTRAP_SERVERS`` is also accepted for the
broker address. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root(package_dir: Path) -> Path | None:
    """The project's root when the code runs from a source checkout (``services/gnlc_core``
    beside ``pyproject.toml``); ``None`` for an installed package, whose parents are
    site-packages and the interpreter's library, never a place for state."""
    root = package_dir.parent.parent
    if package_dir.parent.name == "services" and (root / "pyproject.toml").is_file():
        return root
    return None


PROJECT_ROOT = checkout_root(_PACKAGE_DIR)
"""The source checkout, or ``None`` for an installed package."""
SAMPLE_DIRECTORY = _PACKAGE_DIR / "sample-cities.csv"


def default_state_dir() -> Path:
    """``.local/state`` in the source checkout; for an installed package, in the current
    directory (an image sets ``GNLC_STATE_DIR`` to its volume)."""
    return (PROJECT_ROOT or Path.cwd()) / ".local" / "state"


class Settings(BaseSettings):
    """What every service reads at start."""

    model_config = SettingsConfigDict(env_prefix="GNLC_", extra="ignore", frozen=True)

    # Kafka
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices("GNLC_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated host:port list of the Kafka brokers.",
    )
    topic_prefix: str = Field(default="gnlc.", description="Prefix of every topic and group.")
    topic_partitions: int = Field(default=6, ge=1, description="Partitions of created topics.")
    topic_replication: int = Field(
        default=1, ge=1, description="Replication factor of created topics (3 on a cluster)."
    )
    topic_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of created topics; none: one fewer than the "
        "replication factor, at least 1 (2 for replication 3).",
    )

    # State
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Directory of the services' SQLite files (when GNLC_DATABASE_URL is unset).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy async URL (postgresql+asyncpg://...); default: SQLite per service.",
    )

    # Shared data
    directory_path: Path = Field(default=SAMPLE_DIRECTORY, description="City directory CSV.")

    # Scheduler
    deadlines_path: Path | None = Field(default=None, description="Deadlines YAML to load.")
    misfire_grace_seconds: int = Field(
        default=3600, ge=0, description="How late a missed reminder may still be sent."
    )
    claim_timeout_seconds: float = Field(
        default=15.0, gt=0, description="When a row claimed by a dead instance is taken over."
    )
    calendar_cancel_on_submission: bool = Field(
        default=True,
        description=(
            "A city's submission withdraws the deadline's calendar entry from that city "
            "(METHOD:CANCEL): a submitted deadline needs no entry and no alarm any more."
        ),
    )
    sweep_seconds: float = Field(
        default=1.0, gt=0, description="How often the dispatcher looks for work it was not told of."
    )
    operator_token: SecretStr | None = Field(
        default=None, description="Bearer token of the operator API (none: API refuses writes)."
    )

    # Email
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_seconds: float = 30.0
    smtp_connections: int = Field(
        default=8, ge=1, description="Persistent SMTP connections: the send concurrency."
    )
    mail_from: str = "GNLC Secretariat <gnlc-notify@example.org>"
    mail_reply_to: str | None = None
    message_id_domain: str = "notify.gnlc.example.org"
    # Email: TLS, rate limits, batches, retries, unsubscribe (issue 4)
    smtp_validate_certs: bool = Field(default=True, description="Verify the server's TLS cert.")
    smtp_ca_file: Path | None = Field(default=None, description="CA bundle for a private CA.")
    smtp_rate_per_second: float = Field(
        default=0, ge=0, description="Sends/s, all instances' share; 0: none."
    )
    smtp_rate_per_hour: int = Field(default=0, ge=0, description="Sends in any hour; 0: none.")
    email_batch_size: int = Field(default=100, ge=1, description="Records per consumer batch.")
    email_retry_delays_seconds: tuple[float, ...] = Field(
        default=(60, 300, 1800, 7200, 21600),
        min_length=1,
        description="Delays before each retry of a transient failure (JSON list).",
    )
    email_retry_time_scale: float = Field(
        default=1.0, gt=0, description="Multiplies every retry delay (tests: 0.01)."
    )
    email_public_url: str = Field(
        default="http://127.0.0.1:8101",
        description="Base URL of the email service as recipients reach it (unsubscribe links).",
    )
    email_unsubscribe_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="HMAC secrets of unsubscribe links, JSON list, current last (rotation); "
        "none: one is generated and kept in the database.",
    )

    # Email: daily digests (issue 15; gnlc_email.digest)
    email_digest_time: time = Field(
        default=time(9),
        description="City-local time of day digests close (HH:MM[:SS]): the scheduler's "
        "default delivery_hour, when day-based reminders arrive.",
    )
    email_digest_window_seconds: float = Field(
        default=300,
        ge=0,
        le=3600,
        description="How long after the digest time a notice still joins that day's digest "
        "(the reminders of the delivery hour reaching the service); the digest goes then.",
    )
    email_digest_poll_seconds: float = Field(
        default=30, gt=0, le=3600, description="How often due digests are looked for."
    )

    # Email: bounces, complaints, DKIM (issue 15; gnlc_email.verp, inbound, sendgrid)
    bounce_domain: str | None = Field(
        default=None,
        description="Domain of the VERP return paths (bounces+<token>@domain); none: off.",
    )
    bounce_local_part: str = Field(
        default="bounces", pattern=r"^[a-z0-9][a-z0-9.-]{0,9}$", description="Before the +."
    )
    bounce_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="HMAC secrets of the return paths, JSON list, current last; needed with "
        "GNLC_BOUNCE_DOMAIN (no default).",
    )
    bounce_smtp_host: str = Field(default="127.0.0.1", description="Inbound listener address.")
    bounce_smtp_port: int | None = Field(
        default=None, ge=1, le=65535, description="Inbound SMTP listener port; none: off."
    )
    bounce_soft_threshold: int = Field(
        default=3, ge=1, description="Soft bounces within the window that mark a contact."
    )
    bounce_soft_window_seconds: float = Field(
        default=7 * 86400.0, gt=0, description="The window soft bounces are counted in."
    )
    bounce_sendgrid_public_key: str | None = Field(
        default=None,
        max_length=1000,
        description="SendGrid's signed event webhook verification key (base64 or PEM); "
        "none: the webhook is off.",
    )
    bounce_sendgrid_max_age_seconds: float = Field(
        default=600.0, gt=0, description="How old a signed SendGrid timestamp may be."
    )
    dkim_domain: str | None = Field(default=None, description="DKIM d=; none: no signing.")
    dkim_selector: str | None = Field(default=None, description="DKIM s=.")
    dkim_private_key_path: Path | None = Field(default=None, description="PEM private key file.")
    dkim_private_key: SecretStr | None = Field(default=None, description="PEM private key.")

    # Webhooks (services/gnlc_webhook): delivery, retries, limits, SSRF guard
    partners_path: Path | None = Field(
        default=None, description="Partner endpoints YAML, seeded into the database at start."
    )
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    webhook_concurrency: int = Field(
        default=256,
        ge=1,
        description=(
            "Connections, all endpoints: well above one endpoint's share, so endpoints that"
            " hang (each holding its share until the timeout) leave room for the others."
        ),
    )
    webhook_endpoint_concurrency: int = Field(
        default=16, ge=1, description="Requests in flight per endpoint (unless it sets its own)."
    )
    webhook_endpoint_rate: float | None = Field(
        default=None, gt=0, description="Requests per second per endpoint (none: unlimited)."
    )
    webhook_retry_delays: tuple[float, ...] = Field(
        default=(5, 300, 1800, 7200, 18000, 36000, 36000),
        min_length=1,
        description="Seconds before attempt 2, 3, ... (JSON list); the first is immediate.",
    )
    webhook_retry_jitter: float = Field(default=0.1, ge=0, lt=1)
    webhook_retry_time_scale: float = Field(
        default=1.0, gt=0, description="Multiplies every retry delay (tests shrink days)."
    )
    webhook_hold_check_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often deliveries held for a hanging endpoint are looked at for release.",
    )
    webhook_handoff_seconds: float = Field(
        default=1.0,
        gt=0,
        description="A request still in flight after this long no longer holds its batch.",
    )
    webhook_slow_down_seconds: float = Field(
        default=5.0, ge=0, description="Pause after 429/502/504 without Retry-After."
    )
    webhook_max_retry_after_seconds: float = Field(default=86400.0, gt=0)
    webhook_disable_after_seconds: float = Field(
        default=5 * 86400.0, gt=0, description="An endpoint failing this long is disabled."
    )
    webhook_secret_grace_seconds: float = Field(
        default=86400.0, ge=0, description="How long the old secret still signs after rotation."
    )
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs exempt from the SSRF guard (development and tests).",
    )
    webhook_https_only: bool = Field(default=False, description="Refuse http:// endpoints.")
    webhook_batch_size: int = Field(default=500, ge=1, description="Records per Kafka batch.")
    webhook_response_body_limit: int = Field(default=1024, ge=0, description="Bytes logged.")
    webhook_endpoint_refresh_seconds: float = Field(default=5.0, gt=0)
    webhook_http_transport: str = Field(
        default="http1",
        pattern="^(http1|aiohttp|httpx)$",
        description="The deliveries' HTTP client: http1 (their own), aiohttp or httpx.",
    )
    webhook_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes, each a member of the consumer groups (2 to use 2 cores).",
    )

    # The operator console (services/gnlc_console): a web tier over the services' APIs
    console_scheduler_url: str = Field(
        default="http://127.0.0.1:8100", description="The scheduler's API, as the console calls it."
    )
    console_webhook_url: str = Field(
        default="http://127.0.0.1:8102",
        description="The webhook service's API, as the console calls it.",
    )
    console_status_url: str = Field(
        default="http://127.0.0.1:8104",
        description="The status service's API, as the console calls it.",
    )
    console_email_url: str = Field(
        default="http://127.0.0.1:8101",
        description="The email service's API, as the console calls it.",
    )
    console_cookie_secure: bool = Field(
        default=True,
        description="Session cookies only over HTTPS (false only for plain http on loopback).",
    )
    console_session_idle_seconds: int = Field(
        default=1800, ge=60, description="A console session ends after this long unused."
    )
    console_session_max_seconds: int = Field(
        default=43200, ge=60, description="A console session ends this long after sign-in."
    )
    # the status view (gnlc_status)
    status_batch_size: int = Field(
        default=1000, ge=1, le=10_000, description="Receipts per consumer batch."
    )
    status_webhook_api_url: str = Field(
        default="http://127.0.0.1:8102",
        description="The webhook API the status service asks which endpoints a partner owns.",
    )

    # HTTP (health and APIs) and logs
    http_host: str = "127.0.0.1"
    scheduler_port: int = 8100
    email_port: int = 8101
    webhook_port: int = 8102
    console_port: int = 8103
    status_port: int = 8104
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")

    @model_validator(mode="after")
    def _min_insync_within_replication(self) -> Settings:
        wanted = self.topic_min_insync_replicas
        if wanted is not None and wanted > self.topic_replication:
            raise ValueError(
                f"GNLC_TOPIC_MIN_INSYNC_REPLICAS ({wanted}) is more than GNLC_TOPIC_REPLICATION "
                f"({self.topic_replication}): no record could ever be written with acks=all"
            )
        return self
