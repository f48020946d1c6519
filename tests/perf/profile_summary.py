"""Where a webhook drain's CPU goes: py-spy's collapsed stacks (``--format raw``, as
``deploy/bench.sh webhook --profile FILE`` writes them for the service and the raw loop)
summed by what the samples were doing, and per delivery.

``python -m tests.perf.profile_summary FILE [--deliveries N] [--top K]``

Each sample (py-spy records 100 a second per active thread) goes to the first category
whose marker is in its stack, in the order of ``CATEGORIES``; the rest is "other". With
``--deliveries``, microseconds of samples per delivery as well (a sample stands for 10 ms
of a thread that was running or waiting for a core: on a busy machine the figures include
the wait).
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

SAMPLE_US = 10_000  # py-spy's default rate: 100 samples a second

#: (category, markers in a stack's frames); the first that matches takes the sample
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SQLite writer thread (aiosqlite)", ("_connection_worker_thread",)),
    ("receipts (ledger listener)", ("ReceiptPublisher.__call__",)),
    ("metrics", ("NoticeMetrics.__call__", "prometheus_client")),
    ("HTTP: the own client (http1, httptools)", ("gnlc_webhook/http1", "httptools")),
    ("HTTP: aiohttp", ("aiohttp/",)),
    ("HTTP: httpx objects", ("httpx/_models",)),
    ("signing", ("signed_headers",)),
    ("event parsing (pydantic)", ("decode (gnlc_core/consumer.py",)),
    ("event encoding", ("encode_event",)),
    ("SQL statements (SQLAlchemy, event loop thread)", ("sqlalchemy/",)),
    ("Kafka client (aiokafka)", ("aiokafka/",)),
    (
        "consumer bookkeeping (jobs, lanes, policy, timeouts, tasks)",
        ("WebhookConsumer", "gnlc_webhook/lanes", "asyncio/timeouts", "Subjects.remember"),
    ),
)
EVENT_LOOP = "event loop (uvloop, its own work)"
_LOOP_LEAF = re.compile(r"Runner\.run \(asyncio/runners\.py:\d+\)$")


def categorize(stack: str) -> str:
    for name, markers in CATEGORIES:
        if any(marker in stack for marker in markers):
            return name
    if _LOOP_LEAF.search(stack):
        return EVENT_LOOP
    return "other"


def summarize(lines: list[str]) -> tuple[collections.Counter[str], int]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, number = line.rstrip().rpartition(" ")
        if not stack or not number.isdigit():
            continue
        counts[categorize(stack)] += int(number)
        total += int(number)
    return counts, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--deliveries", type=int, help="deliveries in the profiled drain")
    args = parser.parse_args()
    counts, total = summarize(args.file.read_text().splitlines())
    for name, samples in counts.most_common():
        line = f"{samples * 100 / total:5.1f} %  {name}"
        if args.deliveries:
            line += f"  ({samples * SAMPLE_US / args.deliveries:.0f} us per delivery)"
        print(line)
    per = f", {total * SAMPLE_US / args.deliveries:.0f} us per delivery" if args.deliveries else ""
    print(f"{total} samples{per}")


if __name__ == "__main__":
    main()
