"""Benchmark of the webhook channel on the real broker, the service as a child process and
a cheap HTTP sink in a process of its own (``tests/perf/sink.py``).

* throughput: N events produced as fast as possible to a fresh topic, fanned out to E
  endpoints on the sink; deliveries per second from the first to the last arrival;
* latency at a steady rate: event ``time`` (set when it is sent) to its arrival at the sink;
  p50, p95, p99, max;
* the raw limit: the same events, topic layout and sink drained by the least a sender must
  do (``tests/perf/raw_webhook.py``: getmany, HMAC, aiohttp POST, commit), and the ratio of
  the service's backlog drain to it, from the same run (``--rounds N``: N pairs of drains,
  service then raw loop, and the median of their ratios: one pair on a shared machine can
  be off by half), and each drain's CPU time per delivery and their ratio (the load moves
  it much less than the rates);
* isolation: the throughput to 4 healthy endpoints alone, then again with one more
  endpoint that never answers (its requests hang until the delivery timeout): the drop
  after the first 2 s of each run, the drop over the whole run, and the longest pause
  (the hand-off time, when the first batch meets the hanging endpoint); the median of
  ``--pairs`` pairs of runs.

``deploy/bench.sh --webhook`` runs it (``python -m tests.perf.bench_webhook --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gnlc_webhook.partners import new_secret
from tests.perf.bench_pipeline import machine, percentiles, produce
from tests.support import (
    Process,
    Service,
    free_port,
    scratch_postgres_database,
    seed_directory,
    wait_stable_group,
)

# The isolation figure is the throughput after the first seconds of a run: the first batch
# that meets a hanging endpoint waits GNLC_WEBHOOK_HANDOFF_SECONDS (1 s) before it hands its
# requests off, once, which the benchmark reports on its own as the longest pause.
STEADY_AFTER = 2.0


@dataclass
class Sink:
    """The sink's process and the file it appends each arrival to (``webhook-id path
    epoch-seconds``), read incrementally: a benchmark polls it while the drain it times
    runs, and re-reading the whole file each time (every earlier drain's lines too: 200,000
    after five pairs) took CPU from the processes being timed."""

    port: int
    out: Path
    proc: subprocess.Popen[bytes]
    _read: int = 0  # bytes of ``out`` parsed so far (whole lines only)
    _first: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _new(self) -> list[tuple[tuple[str, str], float]]:
        """The (webhook id, path) pairs that first arrived since the last read, with when."""
        with self._lock:
            if not self.out.exists():
                return []
            with self.out.open("rb") as file:
                file.seek(self._read)
                chunk = file.read()
            end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
            self._read += end
            new: list[tuple[tuple[str, str], float]] = []
            for line in chunk[:end].decode().splitlines():
                parts = line.split(" ")
                if len(parts) == 3 and (key := (parts[0], parts[1])) not in self._first:
                    self._first[key] = at = float(parts[2])
                    new.append((key, at))
            return new

    def arrivals(self, prefix: str = "/hooks/") -> dict[tuple[str, str], float]:
        """First arrival time per (webhook id, path), for paths starting with ``prefix``."""
        self._new()
        with self._lock:
            return {key: at for key, at in self._first.items() if key[1].startswith(prefix)}

    def wait(self, count: int, timeout: float, prefix: str) -> dict[tuple[str, str], float]:
        """The arrivals under ``prefix`` once there are ``count`` (or at the timeout)."""
        deadline = time.monotonic() + timeout
        seen = self.arrivals(prefix)
        while len(seen) < count and time.monotonic() < deadline:
            time.sleep(0.25)
            seen.update((key, at) for key, at in self._new() if key[1].startswith(prefix))
        return seen


def start_sink(tmp: Path) -> Sink:
    port = free_port()
    out = tmp / f"sink-{port}.txt"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.perf.sink",
            "--port",
            str(port),
            "--out",
            str(out),
            "--hang",
            "/hooks/hang",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/warmup", content=b"", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return Sink(port, out, proc)


class Run:
    """One webhook service on a fresh topic prefix, with endpoints on the sink."""

    def __init__(
        self,
        bootstrap: str,
        tmp: Path,
        sink: Sink,
        database: str | None,
        env: dict[str, str],
        *,
        seeded: Sequence[str] = (),
        before_start: Callable[[Run], None] | None = None,
    ) -> None:
        """``seeded``: endpoint names in a partners file read at start; ``before_start``
        runs once the topics exist, before the service starts (a backlog to drain)."""
        self.prefix = f"wb{uuid.uuid4().hex[:8]}."
        self._stack = ExitStack()
        self._before_start = before_start
        self._seeded = bool(seeded)
        if seeded:
            partners = tmp / f"partners-{self.prefix}yaml"
            partners.write_text(
                json.dumps(
                    {
                        "endpoints": [
                            {
                                "id": name,
                                "partner": "bench",
                                "url": f"{sink.url}{self.path(name)}",
                                "event_types": ["deadline.reminder"],
                                "secret": new_secret(),
                            }
                            for name in seeded
                        ]
                    }
                )
            )
            env = {**env, "GNLC_PARTNERS_PATH": str(partners)}
        url = f"sqlite+aiosqlite:///{tmp / self.prefix}db"
        if database is not None and database.startswith("postgresql"):
            url = self._stack.enter_context(scratch_postgres_database(database))
        self.database_url = url
        self.token = secrets.token_urlsafe(16)
        self.sink = sink
        port = free_port()
        self.service = Service(
            "webhook",
            dict(
                os.environ,
                KAFKA_BOOTSTRAP_SERVERS=bootstrap,
                GNLC_TOPIC_PREFIX=self.prefix,
                GNLC_WEBHOOK_PORT=str(port),
                GNLC_OPERATOR_TOKEN=self.token,
                GNLC_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
                GNLC_DATABASE_URL=url,
                GNLC_LOG_LEVEL="WARNING",
                GNLC_WEBHOOK_ENDPOINT_REFRESH_SECONDS="1",
                **env,
            ),
            port,
            tmp / f"webhook-{self.prefix}log",
        )
        self.bootstrap = bootstrap
        self.workers = int(env.get("GNLC_WEBHOOK_WORKERS", "1"))

    def __enter__(self) -> Run:
        seed_directory(self.bootstrap, self.prefix)
        if self._before_start is not None:
            self._before_start(self)
        self.service.start()
        if not self._seeded:
            self._call("POST", "/partners", {"id": "bench", "name": "bench"})
        return self

    def __exit__(self, *exc: Any) -> None:
        self.service.stop()
        self._stack.close()

    def _call(self, method: str, path: str, body: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.service.url}/v1{path}",
            json=body,
            headers={"authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def path(self, name: str) -> str:
        """Where endpoint ``name`` (``ok-0``, ``hang-0``, ``lat-0``) points on the sink; the
        sink leaves paths under /hooks/hang unanswered."""
        return f"/hooks/{name.split('-')[0]}/{self.prefix}{name}"

    def endpoint(self, name: str) -> None:
        self._call(
            "POST",
            "/endpoints",
            {
                "url": f"{self.sink.url}{self.path(name)}",
                "event_types": ["deadline.reminder"],
                "partner": "bench",
            },
        )

    def settle(self) -> None:
        """Wait until the consumer group is stable with every worker in it (the first
        rebalances are start-up, not steady state) and every worker has re-read the endpoints
        (GNLC_WEBHOOK_ENDPOINT_REFRESH_SECONDS is 1 here)."""
        group = f"{self.prefix}webhook"
        if not wait_stable_group(self.bootstrap, group, self.workers, timeout=60):
            raise RuntimeError(f"consumer group {group} not stable with {self.workers} members")
        time.sleep(2.5)

    @property
    def topic(self) -> str:
        return f"{self.prefix}deadline.reminder"


def spy_on(proc: Process | None, profile: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy recording ``proc``'s CPU samples (collapsed stacks, by thread) into ``profile``."""
    if profile is None or proc is None:
        return None
    spy_bin = shutil.which("py-spy", path=Path(sys.executable).parent) or "py-spy"
    command = [spy_bin, "record", "--pid", str(proc.pid), "--threads", "--subprocesses"]
    command += ["--format", "raw", "--output", str(profile)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


def stop_spying(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None and spy.poll() is None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on an interrupt
        spy.wait(timeout=60)


def throughput(
    bootstrap: str,
    tmp: Path,
    sink: Sink,
    events: int,
    healthy: int,
    hanging: int,
    database: str | None,
    env: dict[str, str],
    *,
    backlog: bool = False,
    profile: Path | None = None,
) -> dict[str, Any]:
    """``backlog``: the events are on the topic before the service starts (it drains them,
    alone on the machine with the broker); otherwise they are produced while it runs.
    ``profile``: py-spy's collapsed stacks (CPU samples, by thread) of the service while
    it drains, if py-spy is installed."""
    names = [f"ok-{i}" for i in range(healthy)]
    hung = [f"hang-{i}" for i in range(hanging)]
    produced = 0.0

    def fill(run: Run) -> None:
        nonlocal produced
        t0 = time.time()
        asyncio.run(produce(bootstrap, run.topic, events))
        produced = time.time() - t0

    with Run(
        bootstrap,
        tmp,
        sink,
        database,
        env,
        seeded=[*names, *hung] if backlog else (),
        before_start=fill if backlog else None,
    ) as run:
        if not backlog:
            for name in [*names, *hung]:
                run.endpoint(name)
            run.settle()
            fill(run)
        want = events * healthy
        spy = spy_on(run.service.proc, profile)
        prefix = f"/hooks/ok/{run.prefix}"
        pid = run.service.proc.pid if run.service.proc is not None else None
        cpu = cpu_seconds(pid) if pid is not None else None
        before = len(sink.arrivals(prefix))  # the CPU time counts the deliveries after these
        seen = sink.wait(want, timeout=600, prefix=prefix)
        if cpu is not None and pid is not None:
            cpu = cpu_seconds(pid) - cpu
        stop_spying(spy)
    times = sorted(seen.values())
    steady = [t for t in times if t >= times[0] + STEADY_AFTER] if times else []
    steady_span = steady[-1] - steady[0] if len(steady) > 1 else float("nan")
    return {
        "events": events,
        "endpoints": healthy,
        "hanging_endpoints": hanging,
        "mode": "backlog" if backlog else "produced while running",
        "deliveries": len(seen),
        "complete": len(seen) == want,
        "produce_seconds": round(produced, 2),
        **timeline(times),
        f"after_{STEADY_AFTER:g}s_per_second": round(len(steady) / steady_span, 1),
        "cpu_us_per_delivery": per_delivery(cpu, len(seen) - before),
    }


def timeline(times: Sequence[float]) -> dict[str, float]:
    """A drain's span from the first arrival to the last (sorted arrival times), its rate
    over that span, and the longest time between two arrivals."""
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return {
        "seconds_first_to_last": round(span, 2),
        "deliveries_per_second": round(len(times) / span, 1),
        "longest_pause_seconds": round(max(gaps, default=0.0), 2),
    }


def raw_throughput(
    bootstrap: str, tmp: Path, sink: Sink, events: int, profile: Path | None = None
) -> dict[str, Any]:
    """The raw loop's backlog drain of ``events`` to one endpoint on the sink, on a fresh
    prefix whose topics the services' own code creates (same partitions); ``profile``: as
    for ``throughput``."""
    prefix = f"raw{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}deadline.reminder"
    seed_directory(bootstrap, prefix)
    asyncio.run(produce(bootstrap, topic, events))
    path = f"/hooks/raw/{prefix}raw-0"
    raw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.perf.raw_webhook",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--group",
            f"{prefix}raw",
            "--url",
            f"{sink.url}{path}",
            "--secret",
            new_secret(),
            "--events",
            str(events),
        ],
        stdout=subprocess.PIPE,
    )
    spy = spy_on(raw, profile)
    out = b""
    try:
        seen = sink.wait(events, timeout=600, prefix=path)
        stop_spying(spy)
        with suppress(subprocess.TimeoutExpired):  # it stops once it has committed them all
            out, _ = raw.communicate(timeout=30)
    finally:
        stop_spying(spy)
        if raw.poll() is None:
            raw.terminate()
            raw.wait(timeout=30)
    lines = out.decode().strip().splitlines()
    cpu = json.loads(lines[-1]) if lines else {}
    return {
        "events": events,
        "deliveries": len(seen),
        "complete": len(seen) == events,
        **timeline(sorted(seen.values())),
        "cpu_us_per_delivery": per_delivery(cpu.get("cpu_seconds"), cpu.get("deliveries")),
    }


def per_delivery(seconds: float | None, deliveries: int | None) -> float | None:
    if seconds is None or not deliveries:
        return None
    return round(seconds / deliveries * 1e6, 1)


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of a process and its child processes still running (the
    worker processes of ``GNLC_WEBHOOK_WORKERS``), from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the name: state, ppid, ... utime (14th field of the line), stime (15th)
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def latency(
    bootstrap: str,
    tmp: Path,
    sink: Sink,
    rate: float,
    seconds: float,
    database: str | None,
    env: dict[str, str],
) -> dict[str, Any]:
    with Run(bootstrap, tmp, sink, database, env) as run:
        run.endpoint("lat-0")
        run.settle()
        # the first second (not counted) warms the producer, the consumers and the pool up
        warm, count = int(rate), int(rate * seconds)
        sent = asyncio.run(produce(bootstrap, run.topic, warm + count, rate))
        seen = sink.wait(warm + count, timeout=120, prefix=f"/hooks/lat/{run.prefix}")
    by_id = {event_id: at for (event_id, _path), at in seen.items()}
    measured = list(sent.items())[warm:]
    samples = [(by_id[i] - at) * 1000 for i, at in measured if i in by_id]
    return {
        "rate": rate,
        "events": count,
        "delivered": len(samples),
        **{k: round(v, 1) for k, v in percentiles(samples).items()},
    }


def drop_percent(alone: dict[str, Any], hung: dict[str, Any], figure: str) -> float:
    return round((1 - float(hung[figure]) / float(alone[figure])) * 100, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per throughput run")
    parser.add_argument("--endpoints", type=int, default=1, help="healthy endpoints")
    parser.add_argument("--rate", type=float, default=500.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument(
        "--only",
        choices=("throughput", "backlog", "raw", "latency", "isolation"),
        help="backlog: the throughput's backlog drain alone",
        action="append",
        default=[],
    )
    parser.add_argument("--transport", choices=("http1", "aiohttp", "httpx"), default="http1")
    parser.add_argument("--workers", type=int, default=1, help="GNLC_WEBHOOK_WORKERS")
    parser.add_argument(
        "--endpoint-concurrency",
        type=int,
        help="GNLC_WEBHOOK_ENDPOINT_CONCURRENCY (default: the service's own, 16): requests in"
        " flight per endpoint; the raw loop keeps 256 connections",
    )
    parser.add_argument("--pairs", type=int, default=3, help="isolation runs (alone, hanging)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="pairs of backlog drains (service, raw loop) for the ratio: the median of theirs",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy's collapsed stacks of the service's backlog drain (FILE) and of the raw"
        " loop's (FILE.raw.txt)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GNLC_TEST_POSTGRES_URL"),
        help="a PostgreSQL server (a scratch database per run); 'sqlite' for SQLite files",
    )
    args = parser.parse_args()
    database = args.database_url if args.database_url != "sqlite" else None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    only = set(args.only) or {"throughput", "raw", "latency", "isolation"}
    env = {"GNLC_WEBHOOK_HTTP_TRANSPORT": args.transport, "GNLC_WEBHOOK_WORKERS": str(args.workers)}
    if args.endpoint_concurrency is not None:
        env["GNLC_WEBHOOK_ENDPOINT_CONCURRENCY"] = str(args.endpoint_concurrency)
    tmp = Path(tempfile.mkdtemp(prefix="gnlc-bench-webhook-"))
    sink = start_sink(tmp)
    results: dict[str, Any] = {}

    def backlog(profile: Path | None = None) -> dict[str, Any]:
        """The service draining the events from a backlog (healthy endpoints only)."""
        return throughput(
            bootstrap,
            tmp,
            sink,
            args.events,
            args.endpoints,
            0,
            database,
            env,
            backlog=True,
            profile=profile,
        )

    try:
        if "throughput" in only or "backlog" in only:
            results["throughput_backlog"] = backlog(args.profile)
        if "throughput" in only:
            results["throughput_while_producing"] = throughput(
                bootstrap, tmp, sink, args.events, args.endpoints, 0, database, env
            )
        if "raw" in only:
            raw_profile = Path(f"{args.profile}.raw.txt") if args.profile else None
            results["raw_limit_backlog"] = raw = raw_throughput(
                bootstrap, tmp, sink, args.events, raw_profile
            )
            if "throughput_backlog" in results:
                rates = [(results["throughput_backlog"], raw)]
                for _ in range(1, args.rounds):  # more pairs, service then raw, one after the other
                    more = backlog()
                    rates.append((more, raw_throughput(bootstrap, tmp, sink, args.events)))
                services = [float(one["deliveries_per_second"]) for one, _ in rates]
                raws = [float(r["deliveries_per_second"]) for _, r in rates]
                ratios = [round(a / b, 3) for a, b in zip(services, raws, strict=True)]
                # CPU per delivery, raw loop / service: what the ratio would be if both had a
                # core to themselves (each drain is bound by its CPU), whatever else runs
                cpu_ratios = [
                    round(r["cpu_us_per_delivery"] / one["cpu_us_per_delivery"], 3)
                    for one, r in rates
                    if one["cpu_us_per_delivery"] and r["cpu_us_per_delivery"]
                ]
                results["ratio_to_raw"] = {
                    "service_backlog_per_second": services,
                    "raw_backlog_per_second": raws,
                    "ratios": ratios,
                    "ratio": statistics.median(ratios),
                    "target": 0.7,
                    "service_cpu_us_per_delivery": [one["cpu_us_per_delivery"] for one, _ in rates],
                    "raw_cpu_us_per_delivery": [r["cpu_us_per_delivery"] for _, r in rates],
                    "service_longest_pause_seconds": [
                        one["longest_pause_seconds"] for one, _ in rates
                    ],
                    "raw_longest_pause_seconds": [r["longest_pause_seconds"] for _, r in rates],
                    "cpu_ratio": statistics.median(cpu_ratios) if cpu_ratios else None,
                }
        if "latency" in only:
            results[f"latency_ms_at_{args.rate:g}_per_s"] = latency(
                bootstrap, tmp, sink, args.rate, args.seconds, database, env
            )
        if "isolation" in only:
            # pairs of runs, alone then with the hanging endpoint: one pair varies by several
            # points between runs, so the median of the pairs is the figure
            steady = f"after_{STEADY_AFTER:g}s_per_second"
            drops: list[float] = []
            whole: list[float] = []
            pauses: list[float] = []
            for pair in range(1, args.pairs + 1):
                alone = throughput(
                    bootstrap, tmp, sink, args.events, 4, 0, database, env, backlog=True
                )
                hung = throughput(
                    bootstrap, tmp, sink, args.events, 4, 1, database, env, backlog=True
                )
                results[f"isolation_{pair}_healthy_alone"] = alone
                results[f"isolation_{pair}_with_one_hanging"] = hung
                drops.append(drop_percent(alone, hung, steady))
                whole.append(drop_percent(alone, hung, "deliveries_per_second"))
                pauses.append(hung["longest_pause_seconds"])
            results["isolation"] = {
                "pairs": args.pairs,
                "throughput_drop_percent_median": statistics.median(drops),
                "throughput_drop_percent_each": drops,
                "whole_run_drop_percent_median": statistics.median(whole),
                "pause_when_the_endpoint_starts_hanging_seconds": max(pauses),
            }
    finally:
        sink.proc.terminate()
        sink.proc.wait(timeout=10)
    print(f"machine: {machine()}")
    print(
        f"broker: single-node Kafka on loopback ({bootstrap}); transport: {args.transport};"
        f" workers: {args.workers}; database: {'PostgreSQL' if database else 'SQLite'};"
        f" requests in flight per endpoint: {args.endpoint_concurrency or 'the default (16)'}"
    )
    for name, figures in results.items():
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps({"machine": machine(), "results": results}))


if __name__ == "__main__":
    main()
