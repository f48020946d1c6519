"""The webhook HTTP client alone: CPU per request of each way to POST, against the cheap
sink (``tests/perf/sink.py``) in its own process, 16 requests in flight, on uvloop.

* ``Poster`` over the deliveries' own HTTP/1.1 client (``gnlc_webhook.http1``, the default);
* ``httpx.AsyncClient`` over httpx's own transport (httpcore), with the SSRF guard;
* ``httpx.AsyncClient`` over the aiohttp transport;
* ``Poster`` (what deliveries use) over the aiohttp transport: straight to aiohttp, no httpx
  request or response object;
* ``Poster`` over httpx's own transport (an ``httpx.Request`` handed to it);
* aiohttp alone, the floor.

``deploy/bench.sh http`` runs it (``python -m tests.perf.bench_http --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import aiohttp
import httpx
import uvloop

from gnlc_webhook.aiohttp_transport import AiohttpTransport
from gnlc_webhook.ssrf import Policy
from gnlc_webhook.transport import GuardedTransport, Poster, make_poster
from tests.perf.bench_pipeline import machine
from tests.perf.bench_webhook import start_sink

BODY = json.dumps({"specversion": "1.0", "data": {"text": "x" * 600}}).encode()
HEADERS = {
    "webhook-id": "msg_1",
    "webhook-timestamp": "1700000000",
    "webhook-signature": "v1,abc",
    "content-type": "application/json",
}


async def measure(post: Callable[[], Awaitable[None]], requests: int) -> dict[str, float]:
    slots = asyncio.Semaphore(16)

    async def one() -> None:
        async with slots:
            await post()

    for _ in range(200):  # connections open, caches warm
        await post()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"per_second": round(requests / wall), "cpu_us_per_request": round(cpu / requests * 1e6)}


async def run(url: str, requests: int) -> dict[str, dict[str, float]]:
    policy = Policy.parse("127.0.0.0/8")
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    results: dict[str, dict[str, float]] = {}

    async def client_post(client: httpx.AsyncClient) -> None:
        response = await client.post(url, content=BODY, headers=HEADERS)
        assert response.status_code == 204

    async def poster_post(poster: Poster) -> None:
        response = await poster.post(url, content=BODY, headers=HEADERS)
        assert response.status_code == 204

    for name, transport in (
        ("AsyncClient, httpx's transport", GuardedTransport(policy, limits=limits)),
        ("AsyncClient, aiohttp transport", AiohttpTransport(policy, limits=limits)),
    ):
        async with httpx.AsyncClient(transport=transport) as client:
            results[name] = await measure(partial(client_post, client), requests)

    for name, kind in (
        ("Poster, own HTTP/1.1 client", "http1"),
        ("Poster, aiohttp transport", "aiohttp"),
        ("Poster, httpx's transport", "httpx"),
    ):
        poster = make_poster(policy, connect_timeout=5, timeout=15, connections=64, kind=kind)
        results[name] = await measure(partial(poster_post, poster), requests)
        await poster.aclose()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def bare() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()
                assert response.status == 204

        results["aiohttp alone"] = await measure(bare, requests)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per client")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gnlc-bench-http-"))
    sink = start_sink(tmp)
    try:
        results = uvloop.run(run(f"{sink.url}/hooks/http", args.requests))
    finally:
        sink.proc.terminate()
        sink.proc.wait(timeout=10)
    print(f"machine: {machine()}")
    for name, figures in results.items():
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps({"machine": machine(), "results": results}))


if __name__ == "__main__":
    main()
