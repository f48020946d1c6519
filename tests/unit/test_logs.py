from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from gnlc_core.ledger import Notice, Status
from gnlc_core.logs import configure, get_logger


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_secrets_never_reach_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    configure("test", level="INFO", fmt="json")  # here: the handler binds capsys's stderr
    secret = "whsec_" + "A" * 43
    get_logger("t").info(
        "endpoint registered",
        secret=secret,
        smtp_password="hunter2",
        headers={"Authorization": "Bearer abc.def"},
        note=f"configured with {secret}",
    )
    logging.getLogger("library").warning("sending with Bearer sk-123 and %s", secret)
    err = capsys.readouterr().err
    assert "hunter2" not in err
    assert "AAAA" not in err
    assert "abc.def" not in err
    assert "sk-123" not in err
    lines = [json.loads(line) for line in err.splitlines()]
    assert lines[0]["event"] == "endpoint registered"
    assert lines[0]["service"] == "test"
    assert lines[1]["logger"] == "library"


@pytest.mark.usefixtures("restore_logging")
def test_records_and_tuples_are_masked_and_logged(capsys: pytest.CaptureFixture[str]) -> None:
    configure("test", level="INFO", fmt="json")
    secret = "whsec_" + "B" * 43
    notice = Notice("e1", f"hook {secret}", Status.FAILED, 2, error="http 500")
    get_logger("t").info("notice", notice=notice, pair=("a", secret), items=[secret])
    err = capsys.readouterr().err
    assert "BBBB" not in err
    line = json.loads(err.splitlines()[0])
    assert line["notice"][:4] == ["e1", "hook [redacted]", "failed", 2]
    assert line["pair"] == ["a", "[redacted]"]
    assert line["items"] == ["[redacted]"]


@pytest.mark.usefixtures("restore_logging")
def test_routine_start_up_reports_are_debug_and_faststream_is_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("test", level="INFO", fmt="json")
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    coordinator.error(
        "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"
    )
    coordinator.warning("Heartbeat failed for group g.email-retry because it is rebalancing")
    logging.getLogger("aiokafka.consumer.fetcher").error(
        "Failed fetch offsets from 1: [Error 6] NotLeaderForPartitionError: TopicPartition(...)"
    )
    coordinator.error("Unexpected error in coordinator routine")  # not routine: kept
    logging.getLogger("faststream").warning("Auto create topics is disabled. Make sure ...")
    logging.getLogger("faststream").info("Consumer c assigned to partitions: (...)")
    captured = capsys.readouterr()
    assert captured.out == ""  # FastStream no longer writes coloured text to stdout
    lines = [json.loads(line) for line in captured.err.splitlines()]
    assert [(line["level"], line["event"]) for line in lines] == [
        ("error", "Unexpected error in coordinator routine"),
        ("info", "Consumer c assigned to partitions: (...)"),
    ]


@pytest.mark.usefixtures("restore_logging")
def test_routine_reports_show_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    configure("test", level="DEBUG", fmt="json")
    logging.getLogger("aiokafka.consumer.group_coordinator").error(
        "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"
    )
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["level"] for line in lines if "Coordinator" in line["event"]] == ["debug"]
