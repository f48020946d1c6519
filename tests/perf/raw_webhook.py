"""The raw limit of webhook delivery on this machine: the least a sender must do, in a
process of its own, with nothing of the service (no ledger, no retries, no lanes, no
fan-out rules).

aiokafka ``getmany`` -> Standard Webhooks HMAC-SHA256 over ``id.timestamp.body`` ->
aiohttp POST over ``--connections`` connections -> offsets committed once the batch is
answered; on uvloop. The webhook benchmark runs it on the same producer, events, topic
layout and sink as the service, and prints the ratio service/raw from the same run. Once
done it prints the drain's CPU time (``{"deliveries": N, "cpu_seconds": S}``).

``python -m tests.perf.raw_webhook --bootstrap B --topic T --url U --secret S --events N``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import time

import aiohttp
import uvloop
from aiokafka import AIOKafkaConsumer


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


async def drain(
    bootstrap: str, topic: str, group: str, url: str, secret: str, events: int, connections: int
) -> None:
    key = _key(secret)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))
    await consumer.start()

    async def post(message_id: str, body: bytes) -> None:
        stamp = str(int(time.time()))
        signed = f"{message_id}.{stamp}.".encode() + body
        signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": stamp,
            "webhook-signature": f"v1,{signature}",
            "content-type": "application/json",
        }
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()

    done = 0
    cpu = time.process_time()
    try:
        while done < events:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            posts = [
                post(record.key.decode() if record.key else str(record.offset), record.value)
                for records in batches.values()
                for record in records
                if record.value is not None
            ]
            if not posts:
                continue
            await asyncio.gather(*posts)
            await consumer.commit()
            done += len(posts)
        # the benchmark reads this line: the CPU time of the drain alone (not the imports)
        print(json.dumps({"deliveries": done, "cpu_seconds": time.process_time() - cpu}))
    finally:
        await consumer.stop()
        await session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", default="raw-webhook")
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--connections", type=int, default=256)
    args = parser.parse_args()
    uvloop.run(
        drain(
            args.bootstrap,
            args.topic,
            args.group,
            args.url,
            args.secret,
            args.events,
            args.connections,
        )
    )


if __name__ == "__main__":
    main()
