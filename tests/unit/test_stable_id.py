"""``stable_id`` is uuid5 in the project's namespace, computed without the UUID object: the
same ids as ``uuid.uuid5`` for any parts (ids already published must not change)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnlc_core.events import _ID_NAMESPACE, stable_id


def reference(*parts: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))


@pytest.mark.parametrize(
    "parts",
    [
        (),
        ("",),
        ("deadline.reminder", "progress-report-2027", "2027-01-20T08:00:00+00:00", "7d-before"),
        ("notice.status", "e1", "webhook", "ep_1", "delivered", "1", "2026-11-26T00:00:00+00:00"),
        ("announcement.published", "journée-éducation", "北京", "🙂"),
    ],
)
def test_the_ids_are_uuid5s(parts: tuple[str, ...]) -> None:
    assert stable_id(*parts) == reference(*parts)
    assert uuid.UUID(stable_id(*parts)).version == 5


@given(st.lists(st.text(), max_size=8))
def test_any_parts_give_the_uuid5(parts: list[str]) -> None:
    assert stable_id(*parts) == reference(*parts)
