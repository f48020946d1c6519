"""A Kafka cluster of ``deploy/kafka.sh cluster`` for a test or a benchmark of its own: its
nodes on free loopback ports, its state in a directory of its own, a node killed with -9 on
demand. Never the broker the other tests share."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]


class KafkaCluster:
    def __init__(
        self, state: Path, *, nodes: int = 3, heap: str = "256m", quick_start: bool = True
    ) -> None:
        """``quick_start``: the JVMs compile with C1 only (about half the CPU to start, on
        cores the test shares with the services; a benchmark wants the full compiler)."""
        self.nodes = nodes
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "GNLC_KAFKA_BOOTSTRAP_SERVERS")
        }
        self.env.update(
            KAFKA_CLUSTER_STATE_DIR=str(state),
            KAFKA_BROKERS=str(nodes),
            KAFKA_HEAP=heap,
            KAFKA_START_TIMEOUT="180",
            KAFKA_JVM_FLAGS="-XX:TieredStopAtLevel=1" if quick_start else "",
            # from this test worker's own ports (tests.support.free_port)
            KAFKA_CLUSTER_PORTS=",".join(str(free_port()) for _ in range(nodes)),
            KAFKA_CLUSTER_CONTROLLER_PORTS=",".join(str(free_port()) for _ in range(nodes)),
        )
        self._bootstrap = ""

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [ROOT / "deploy" / "kafka.sh", "cluster", *args],
            env=self.env,
            check=True,
            timeout=240,
            stdout=subprocess.PIPE,
            text=True,
        )
        return done.stdout

    def start(self) -> KafkaCluster:
        self.run("start")
        self._bootstrap = self.run("bootstrap").strip()
        return self

    def stop(self) -> None:
        self.run("stop")

    def discard(self) -> None:
        """Kill every node at once (-9): for a cluster whose data goes away with it, a
        controlled shutdown of three nodes at once takes seconds for nothing."""
        for pid in self.pids().values():
            os.kill(pid, signal.SIGKILL)
        self.run("stop")  # forgets the pid files

    @property
    def bootstrap(self) -> str:
        assert self._bootstrap, "the cluster is not started"
        return self._bootstrap

    def pids(self) -> dict[int, int]:
        """Process id of each running node, by node id."""
        return {
            int(node): int(pid)
            for node, pid in (line.split() for line in self.run("pids").splitlines())
        }

    def kill(self, node: int) -> None:
        """SIGKILL to the node's JVM (a crash: no controlled shutdown), and wait until its
        port no longer answers."""
        os.kill(self.pids()[node], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while node in self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert node not in self.pids(), f"node {node} still runs after SIGKILL"

    def group_coordinator(self, group: str) -> int:
        """The node that coordinates consumer group ``group`` (commits go through it)."""

        async def find() -> int:
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                return int(await admin.find_coordinator(group))
            finally:
                await admin.close()

        return asyncio.run(find())
