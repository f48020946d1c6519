"""Running on a cluster: the bootstrap list, min.insync.replicas of the topics the services
create from their replication factor, and settings that could never be written refused at
start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gnlc_core.kafka import bootstrap_list, min_insync_replicas
from gnlc_core.settings import Settings


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ("127.0.0.1:19092", ["127.0.0.1:19092"]),
        ("a:9092,b:9092,c:9092", ["a:9092", "b:9092", "c:9092"]),
        (" a:9092 , b:9092,", ["a:9092", "b:9092"]),
    ],
)
def test_bootstrap_list(servers: str, expected: list[str]) -> None:
    assert bootstrap_list(servers) == expected


@pytest.mark.parametrize(
    ("replication", "configured", "expected"),
    [
        (1, None, 1),  # the single local broker
        (2, None, 1),
        (3, None, 2),  # the cluster: an acknowledged record is on two brokers
        (5, None, 4),
        (3, 3, 3),  # configured wins
        (3, 1, 1),
    ],
)
def test_min_insync_replicas(replication: int, configured: int | None, expected: int) -> None:
    assert min_insync_replicas(replication, configured) == expected


def test_min_insync_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNLC_TOPIC_REPLICATION", "3")
    monkeypatch.setenv("GNLC_TOPIC_MIN_INSYNC_REPLICAS", "3")
    settings = Settings()
    assert (settings.topic_replication, settings.topic_min_insync_replicas) == (3, 3)


@pytest.mark.parametrize(
    ("replication", "min_insync", "valid"),
    [(3, None, True), (3, 2, True), (3, 3, True), (3, 4, False), (1, 2, False)],
)
def test_min_insync_above_replication_is_refused_naming_both_variables(
    replication: int, min_insync: int | None, valid: bool
) -> None:
    if valid:
        Settings(topic_replication=replication, topic_min_insync_replicas=min_insync)
        return
    with pytest.raises(ValidationError) as caught:
        Settings(topic_replication=replication, topic_min_insync_replicas=min_insync)
    assert "GNLC_TOPIC_MIN_INSYNC_REPLICAS" in str(caught.value)
    assert "GNLC_TOPIC_REPLICATION" in str(caught.value)
