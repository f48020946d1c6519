"""Partner endpoints: where each event type goes, and the secret it is signed with."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, TypeAdapter

from gnlc_core.events import EVENT_TYPES, Slug

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    """A fresh ``whsec_`` secret: 32 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _valid_secret(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value()
    if not raw.startswith(SECRET_PREFIX):
        raise ValueError("secret must start with whsec_")
    try:
        key = base64.b64decode(raw.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise ValueError("secret after whsec_ must be base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("secret must decode to 24 to 64 bytes")
    return value


def _known_types(values: tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(values) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event type(s) {unknown}; known: {sorted(EVENT_TYPES)}")
    return values


class Endpoint(BaseModel):
    """One partner URL subscribed to some event types."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    partner: Slug
    url: Annotated[str, Field(pattern=r"^https?://")]
    event_types: Annotated[tuple[str, ...], Field(min_length=1), AfterValidator(_known_types)]
    secret: Annotated[SecretStr, AfterValidator(_valid_secret)]
    description: str = ""

    def wants(self, event_type: str) -> bool:
        return event_type in self.event_types


class PartnerFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoints: list[Endpoint] = []


_file_adapter = TypeAdapter(PartnerFile)


def load_endpoints(path: Path) -> list[Endpoint]:
    """Endpoints from a YAML file ``{endpoints: [...]}``; raises ``ValidationError``.

    ``${NAME}`` is replaced by the environment variable NAME, so secrets can stay out of
    the file."""
    text = os.path.expandvars(path.read_text(encoding="utf-8"))
    raw = yaml.safe_load(text) or {}
    return _file_adapter.validate_python(raw).endpoints
