from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

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
