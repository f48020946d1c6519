"""Partner endpoints from a file (``GNLC_PARTNERS_PATH``): read, checked exactly as the API
checks an endpoint (``gnlc_webhook.validation``, SSRF guard included), then seeded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
)

from gnlc_core.directory import Directory
from gnlc_core.errors import message_of
from gnlc_core.events import Slug
from gnlc_webhook.signing import new_secret, valid_signing_secret
from gnlc_webhook.ssrf import Policy, Resolver, system_resolver
from gnlc_webhook.store import EndpointRow, Store
from gnlc_webhook.validation import (
    MAX_FILE_ENDPOINTS,
    EndpointFields,
    problems,
)

__all__ = [
    "Endpoint",
    "PartnersFileError",
    "load_endpoints",
    "new_secret",
    "seed_partners",
]


def _valid_secret(value: SecretStr) -> SecretStr:
    valid_signing_secret(value.get_secret_value())
    return value


class Endpoint(EndpointFields):
    """One partner URL subscribed to some event types, as the partners file gives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    partner: Slug
    secret: Annotated[SecretStr, AfterValidator(_valid_secret)] = Field(
        description="whsec_ (HMAC) secret or whsk_ (ed25519) signing key"
    )

    def wants(self, event_type: str) -> bool:
        return event_type in self.event_types


class _PartnerFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoints: Annotated[list[Endpoint], Field(max_length=MAX_FILE_ENDPOINTS)] = []


_file_adapter = TypeAdapter(_PartnerFile)


class PartnersFileError(ValueError):
    """The partners file is invalid; the message names the file, the endpoint and the field."""


def _where(path: Path, raw: object, loc: tuple[int | str, ...]) -> str:
    """``path: endpoint <id>: <field>`` for a validation error's location."""
    if len(loc) >= 2 and loc[0] == "endpoints" and isinstance(loc[1], int):
        entries = raw.get("endpoints") if isinstance(raw, dict) else None
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
        name = entry.get("id") if isinstance(entry, dict) else None
        label = f"endpoint {name}" if isinstance(name, str) else f"endpoint #{loc[1] + 1}"
        field = ".".join(str(part) for part in loc[2:])
        return f"{path}: {label}: {field}" if field else f"{path}: {label}"
    field = ".".join(str(part) for part in loc)
    return f"{path}: {field}" if field else str(path)


def load_endpoints(path: Path) -> list[Endpoint]:
    """Endpoints from a YAML file ``{endpoints: [...]}``, checked field by field as the API
    checks them; raises ``PartnersFileError`` naming the endpoint and field of every error.

    ``${NAME}`` is replaced by the environment variable NAME, so secrets can stay out of
    the file."""
    text = os.path.expandvars(path.read_text(encoding="utf-8"))
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PartnersFileError(f"{path}: not YAML: {exc}") from None
    try:
        return _file_adapter.validate_python(raw).endpoints
    except ValidationError as exc:
        lines = [f"{_where(path, raw, tuple(e['loc']))}: {message_of(e)}" for e in exc.errors()]
        raise PartnersFileError("\n".join(lines)) from None


async def check_endpoints(
    path: Path,
    endpoints: list[Endpoint],
    *,
    policy: Policy,
    directory: Directory | None,
    resolver: Resolver = system_resolver,
) -> None:
    """What the API checks beyond the field types (the SSRF guard, the directory); raises
    ``PartnersFileError`` naming the endpoint and field of every problem."""
    lines: list[str] = []
    for endpoint in endpoints:
        found = await problems(
            url=endpoint.url,
            regions=endpoint.regions,
            cities=endpoint.cities,
            directory=directory,
            policy=policy,
            resolver=resolver,
        )
        lines += [f"{path}: endpoint {endpoint.id}: {p.field}: {p.message}" for p in found]
    if lines:
        raise PartnersFileError("\n".join(lines))


async def seed_partners(
    store: Store,
    path: Path,
    *,
    policy: Policy,
    directory: Directory | None,
    resolver: Resolver = system_resolver,
) -> list[Endpoint]:
    """Endpoints of the partners file go into the database once all of them are valid
    (nothing is stored otherwise); the file wins for the fields it sets (the secret and
    ``ordered`` included), while state and failures recorded since are kept. ``directory``
    None skips the city and region check (a start before the directory is read; the
    workers check them again)."""
    endpoints = load_endpoints(path)
    await check_endpoints(path, endpoints, policy=policy, directory=directory, resolver=resolver)
    for endpoint in endpoints:
        await store.upsert_partner(endpoint.partner, endpoint.partner)
        await store.upsert_endpoint(
            EndpointRow(
                id=endpoint.id,
                partner_id=endpoint.partner,
                url=endpoint.url,
                event_types=tuple(dict.fromkeys(endpoint.event_types)),
                regions=endpoint.regions,
                cities=endpoint.cities,
                description=endpoint.description,
                secret=endpoint.secret.get_secret_value(),
                max_concurrency=endpoint.max_concurrency,
                rate_per_second=endpoint.rate_per_second,
                ordered=endpoint.ordered,
            )
        )
        if not endpoint.ordered:  # no delivery waits for another any more
            await store.clear_order(endpoint.id)
    return endpoints
