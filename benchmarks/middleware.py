"""What the middlewares every request passes cost: the security headers (a fresh CSP nonce)
and the streaming body limit, on the ASGI stack alone, wrapped and bare.

    python -m benchmarks.middleware [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from service.body_limit import BodyLimit
from service.security_headers import SecurityHeaders


async def _tile(_scope: dict, _receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"application/vnd.mapbox-vector-tile")]})
    await send({"type": "http.response.body", "body": b"x" * 100})  # type: ignore[operator]


async def _per_call(app: object, calls: int) -> float:
    scope = {"type": "http", "method": "GET", "path": "/tiles/equipment/12/3370/1630.mvt",
             "headers": [(b"host", b"localhost")]}

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(_message: dict) -> None:
        return None

    start = time.perf_counter()
    for _ in range(calls):
        await app(dict(scope), receive, send)  # type: ignore[operator]
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    bare = asyncio.run(_per_call(_tile, calls))
    wrapped = asyncio.run(_per_call(SecurityHeaders(BodyLimit(_tile)), calls))
    print(f"bare {bare:.1f} µs, with both middlewares {wrapped:.1f} µs a request: "
          f"{wrapped - bare:.1f} µs more")


if __name__ == "__main__":
    main()
