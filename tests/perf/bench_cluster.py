"""Scale-out of the webhook channel on a 3-broker Kafka cluster: 1, 2 and 3 consumer
processes (``GNLC_WEBHOOK_WORKERS``, each a member of the consumer group).

The cluster is the benchmark's own (``deploy/kafka.sh cluster`` on free ports, the full JIT
compiler, 512 MiB heap per node); topics have 6 partitions, replication 3 and
``min.insync.replicas`` 2; producers wait for ``acks=all``. For each number of processes,
on a fresh topic prefix with one endpoint on the cheap HTTP sink of the webhook benchmark:

* throughput: once the group is stable with every process in it, N events are produced as
  fast as possible; deliveries per second from the first arrival to the last;
* latency at a steady rate: the event's send to its arrival at the sink, p50 and p99.

``deploy/bench.sh cluster [--events N] [--rate R] [--processes 1,2,3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tests.kafka_cluster import KafkaCluster
from tests.perf.bench_pipeline import machine
from tests.perf.bench_webhook import latency, start_sink, throughput

PARTITIONS = 6
REPLICATION = 3


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| processes | events/s (one endpoint) | per process | latency p50 / p99 (ms) |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['processes']} | {row['per_second']:,.0f} "
            f"| {row['per_second'] / row['processes']:,.0f} "
            f"| {row['p50']:.1f} / {row['p99']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per throughput run")
    parser.add_argument("--rate", type=float, default=500.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument("--processes", default="1,2,3", help="consumer process counts")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GNLC_TEST_POSTGRES_URL"),
        help="a PostgreSQL server (a scratch database per run); 'sqlite' for SQLite files",
    )
    args = parser.parse_args()
    database = args.database_url if args.database_url != "sqlite" else None
    counts = [int(n) for n in args.processes.split(",")]
    # the topics the benchmark's seeding creates, and the services', are replicated
    os.environ["GNLC_TOPIC_REPLICATION"] = str(REPLICATION)
    os.environ["GNLC_TOPIC_PARTITIONS"] = str(PARTITIONS)
    load = os.getloadavg()  # other work on the same cores shows in the figures
    tmp = Path(tempfile.mkdtemp(prefix="gnlc-bench-cluster-"))
    cluster = KafkaCluster(tmp / "cluster", heap="512m", quick_start=False).start()
    sink = start_sink(tmp)
    rows: list[dict[str, Any]] = []
    try:
        for processes in counts:
            env = {"GNLC_WEBHOOK_WORKERS": str(processes)}
            drained = throughput(cluster.bootstrap, tmp, sink, args.events, 1, 0, database, env)
            timed = latency(cluster.bootstrap, tmp, sink, args.rate, args.seconds, database, env)
            rows.append(
                {
                    "processes": processes,
                    "per_second": float(drained["deliveries_per_second"]),
                    "complete": drained["complete"],
                    "p50": timed["p50"],
                    "p99": timed["p99"],
                    "throughput": drained,
                    "latency": timed,
                }
            )
            print(f"{processes} process(es): {drained} / {timed}", flush=True)
    finally:
        sink.proc.terminate()
        sink.proc.wait(timeout=10)
        cluster.run("reset")  # stopped, and its data deleted
    print(
        f"machine: {machine()}; load average (1 min) at start {load[0]:.1f}, at end "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"cluster: 3 KRaft nodes on loopback, {PARTITIONS} partitions, replication "
        f"{REPLICATION}, min.insync.replicas 2, acks=all; database: "
        f"{'PostgreSQL' if database else 'SQLite'}; {args.events} events per throughput "
        f"run, latency at {args.rate:g}/s for {args.seconds:g} s"
    )
    print(table(rows))
    print(json.dumps({"machine": machine(), "results": rows}))


if __name__ == "__main__":
    main()
