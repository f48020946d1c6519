"""The benchmark sink's arrivals file, read a piece at a time as the sink appends to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.perf.bench_webhook import Sink


@pytest.fixture
def sink(tmp_path: Path) -> Sink:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return Sink(0, tmp_path / "arrivals.txt", proc)


def append(sink: Sink, text: str) -> None:
    with sink.out.open("a", encoding="utf-8") as file:
        file.write(text)


def test_no_file_yet_is_no_arrival(sink: Sink) -> None:
    assert sink.arrivals() == {}


def test_each_pair_keeps_its_first_arrival_and_the_prefix_filters(sink: Sink) -> None:
    append(sink, "a /hooks/ok/x 1.0\nb /hooks/raw/y 2.0\n")
    assert sink.arrivals("/hooks/ok/") == {("a", "/hooks/ok/x"): 1.0}
    append(sink, "a /hooks/ok/x 5.0\nc /hooks/ok/x 6.0\n")  # a again: a redelivery
    assert sink.arrivals("/hooks/ok/") == {("a", "/hooks/ok/x"): 1.0, ("c", "/hooks/ok/x"): 6.0}
    assert sink.arrivals() == {
        ("a", "/hooks/ok/x"): 1.0,
        ("b", "/hooks/raw/y"): 2.0,
        ("c", "/hooks/ok/x"): 6.0,
    }


def test_a_line_being_written_is_read_once_it_is_whole(sink: Sink) -> None:
    append(sink, "a /hooks/ok/x 1.0\nb /hooks/ok/")
    assert list(sink.arrivals()) == [("a", "/hooks/ok/x")]
    append(sink, "y 2.5\n")
    assert sink.arrivals()[("b", "/hooks/ok/y")] == 2.5


def test_wait_returns_once_the_count_under_its_prefix_is_there(sink: Sink) -> None:
    append(sink, "a /hooks/raw/y 1.0\n" + "".join(f"{i} /hooks/ok/x {i}.5\n" for i in range(3)))
    seen = sink.wait(3, timeout=5, prefix="/hooks/ok/")
    assert sorted(seen.values()) == [0.5, 1.5, 2.5]
    assert sink.wait(4, timeout=0.3, prefix="/hooks/ok/") == seen  # never more: the timeout
