"""Request-body limits of the operator API, checked before a byte is parsed or stored (by
``gnlc_core.limits.BodyLimit``, which every service runs).

Every other limit sits on the field it limits (``gnlc_core.events``, ``gnlc_core.directory``,
``gnlc_scheduler.deadlines``) and is in the OpenAPI document; the README lists them all.
"""

from __future__ import annotations

#: Bytes of a JSON request body (deadlines, announcements, submissions, patches).
MAX_JSON_BODY = 1024 * 1024
#: Bytes of a directory import (CSV, YAML or JSON): ``MAX_CITIES`` rows with room to spare.
MAX_IMPORT_BODY = 4 * 1024 * 1024
IMPORT_PATH = "/v1/cities/import"


def body_limit_for(path: str) -> int:
    return MAX_IMPORT_BODY if path == IMPORT_PATH else MAX_JSON_BODY
