"""The tests' own ports: each xdist worker hands out its own, below the kernel's ephemeral
range, so a port chosen by one worker is never taken by the other before it is used."""

from __future__ import annotations

import socket

import pytest

from tests.support import PORTS, free_port, worker_ports


@pytest.mark.parametrize(
    ("worker", "workers", "first", "last"),
    [
        ("", 1, 10_000, 31_999),  # outside xdist: all of them
        ("gw0", 1, 10_000, 31_999),
        ("gw0", 2, 10_000, 20_999),
        ("gw1", 2, 21_000, 31_999),
        ("gw2", 3, 24_666, 31_998),
        ("master", 2, 10_000, 20_999),  # not a worker's name: the first share
    ],
)
def test_each_worker_has_its_own_share(worker: str, workers: int, first: int, last: int) -> None:
    ports = worker_ports(worker, workers)
    assert (ports[0], ports[-1]) == (first, last)


def test_the_shares_are_disjoint_and_below_the_ephemeral_range() -> None:
    for workers in (1, 2, 3, 4):
        shares = [set(worker_ports(f"gw{i}", workers)) for i in range(workers)]
        assert sum(len(share) for share in shares) == len(set().union(*shares))
        assert max(max(share) for share in shares) < 32_768
    assert PORTS.stop <= 32_768


def test_a_port_is_free_and_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(port in worker_ports() for port in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))  # free indeed


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.support._handed", set())
    monkeypatch.setattr("tests.support.random.randrange", lambda _n: 0)  # from the first
    ports = worker_ports()
    with socket.socket() as held:
        held.bind(("127.0.0.1", ports[0]))  # something else has the first one
        assert free_port() == ports[1]
    assert free_port() == ports[0]  # let go: handed out now
    assert free_port() == ports[2]  # and the second is not handed out twice
