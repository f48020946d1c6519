"""A deliberately cheap HTTP/1.1 sink for the webhook benchmark, in its own process.

Keep-alive connections; each request is read (head and ``content-length`` body), its
``webhook-id`` and arrival time appended to ``--out`` ("id path epoch-seconds" lines, flushed
every 50 ms), and answered ``204``, on uvloop. Requests to a path under ``--hang`` get no
answer: the connection is held until the client gives up. It checks no signature: the
figures are about the sender.
``python -m tests.perf.sink --port P --out arrivals.txt [--hang /hooks/slow]``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from pathlib import Path
from typing import TextIO

import uvloop

RESPONSE = b"HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n"


class SinkProtocol(asyncio.Protocol):
    def __init__(self, out: list[str], hang: tuple[str, ...]) -> None:
        self._out = out
        self._hang = hang
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._held = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while not self._held:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            path = lines[0].split(" ")[1] if " " in lines[0] else "/"
            self._out.append(f"{headers.get('webhook-id', '-')} {path} {time.time():.6f}\n")
            if path.startswith(self._hang):
                self._held = True  # never answer; the client times out
                return
            assert self._transport is not None
            self._transport.write(RESPONSE)


async def flush(out: list[str], handle: TextIO) -> None:
    while True:
        await asyncio.sleep(0.05)
        if out:
            lines = out[:]
            del out[: len(lines)]
            handle.write("".join(lines))
            handle.flush()


async def serve(port: int, path: Path, hang: tuple[str, ...]) -> None:
    out: list[str] = []
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with path.open("a", encoding="utf-8") as handle:
        server = await loop.create_server(
            lambda: SinkProtocol(out, hang), "127.0.0.1", port, backlog=1024
        )
        flusher = asyncio.create_task(flush(out, handle))
        print(f"sink: http://127.0.0.1:{port}", flush=True)
        await stop.wait()
        server.close()
        flusher.cancel()
        handle.write("".join(out))


def main() -> None:
    parser = argparse.ArgumentParser(description="cheap HTTP sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--hang", action="append", default=[], help="path prefix left hanging")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.out, tuple(args.hang) or ("/never-hang-anything",)))


if __name__ == "__main__":
    main()
