"""An open-loop HTTP load generator: requests at a fixed rate, latency measured from the moment
each request was due, not from when it could be sent (wrk2's correction for coordinated
omission). A server that stalls for 100 ms is charged the 100 ms for every request that fell
due meanwhile, as a gateway with its own queue would feel it.

    .venv/bin/python -m benchmarks.loadgen URL --rate 1000 --seconds 20 --body FILE
        [--header "Authorization: Bearer ..."] [--connections 64]

Pre-encoded HTTP/1.1 requests on keep-alive connections (asyncio on uvloop, no HTTP library:
the generator must cost far less than the server it measures). A request waits for a free
connection when all are busy (its latency keeps counting). Prints one JSON object: the rate
asked and achieved, errors, and the latency percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> int:
        """Send one request, read its whole answer; the status."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status


async def _run(
    url: str, rate: float, seconds: float, body: bytes, headers: list[str], connections: int
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    method = "POST" if body else "GET"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", *headers]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Connection(*await asyncio.open_connection(host, port)))
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)
    clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
    start = clock() + 0.05

    async def one(due: float) -> None:
        nonlocal errors
        connection = await pool.get()
        try:
            status = await connection.exchange(request)
            if status != 200:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            connection = _Connection(*await asyncio.open_connection(host, port))
        finally:
            pool.put_nowait(connection)
        latencies.append(clock() - due)

    tasks = []
    for number in range(total):
        due = start + number / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due)))
    await asyncio.gather(*tasks)
    elapsed = clock() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)

    return {
        "rate_asked": rate,
        "rate_achieved": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": round(latencies[-1] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--body", help="a file whose bytes are POSTed as JSON (default: GET)")
    parser.add_argument("--header", action="append", default=[], help='"Name: value"')
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    body = open(args.body, "rb").read() if args.body else b""  # noqa: SIM115 - read at once
    started = time.perf_counter()
    run = _run(args.url, args.rate, args.seconds, body, args.header, args.connections)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        result = asyncio.run(run)
    else:
        result = uvloop.run(run)
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
