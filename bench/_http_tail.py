"""SSE live-tail subscribers for bench/http --fanout, in a process of their own.

    python bench/_http_tail.py --port PORT --subscribers N

Opens N `GET /api/v1/tail` streams (no filter: every event) and reads each as
fast as it comes, counting events (blocks with a `data:` line and no `event:`
type), `skipped` notices and the events they say were skipped. Prints one
JSON line `{"ready": N}` once every stream has its answer's headers (the
server has subscribed it by then), or `{"error": ...}`. When a line (or EOF)
arrives on stdin, it goes on reading until every stream has been quiet for
`QUIET_S` (its queue on the server drained), at most `STOP_WAIT_S`, then
prints `{"events": [...], "skipped": [...], "notices": [...], "bytes": n}`,
one entry per stream, and exits.

Counting is a few `bytes.count` calls per read, so the readers cost little
CPU next to the server's (they share the machine with it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass

import aiohttp
import orjson

QUIET_S = 0.5
STOP_WAIT_S = 60.0
CONNECT_S = 20.0
SKIPPED = b"event: skipped\ndata: "


@dataclass
class Stream:
    events: int = 0
    skipped: int = 0
    notices: int = 0
    nbytes: int = 0
    last_data: float = 0.0
    ended: bool = False

    def take(self, blocks: bytes) -> None:
        """Count whole SSE blocks (each ends in a blank line)."""
        typed = blocks.count(b"\nevent: ") + blocks.startswith(b"event: ")
        self.events += blocks.count(b"\ndata: ") + blocks.startswith(b"data: ") - typed
        at = blocks.find(SKIPPED)
        while at >= 0:
            start = at + len(SKIPPED)
            end = blocks.find(b"\n", start)
            self.skipped += int(orjson.loads(blocks[start:end])["count"])
            self.notices += 1
            at = blocks.find(SKIPPED, end)


async def _read(response: aiohttp.ClientResponse, stream: Stream) -> None:
    rest = b""
    try:
        async for chunk in response.content.iter_any():
            stream.nbytes += len(chunk)
            stream.last_data = time.monotonic()
            buf = rest + chunk if rest else chunk
            cut = buf.rfind(b"\n\n")
            if cut < 0:
                rest = buf
                continue
            stream.take(buf[: cut + 2])
            rest = buf[cut + 2 :]
    except aiohttp.ClientError:
        pass
    finally:
        stream.ended = True


async def _main(port: int, n: int) -> int:
    url = f"http://127.0.0.1:{port}/api/v1/tail"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_S)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:
        try:
            responses = await asyncio.wait_for(
                asyncio.gather(*(session.get(url) for _ in range(n))), CONNECT_S
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            print(json.dumps({"error": f"{url}: {exc or type(exc).__name__}"}), flush=True)
            return 1
        bad = [r.status for r in responses if r.status != 200]
        if bad:
            text = (await responses[0].text())[:200] if responses[0].status != 200 else ""
            print(json.dumps({"error": f"{url} answered {bad[0]} {text}".strip()}), flush=True)
            return 1
        streams = [Stream(last_data=time.monotonic()) for _ in range(n)]
        readers = [
            asyncio.create_task(_read(r, s)) for r, s in zip(responses, streams, strict=True)
        ]
        print(json.dumps({"ready": n}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            now = time.monotonic()
            if all(s.ended or now - s.last_data >= QUIET_S for s in streams):
                break
            await asyncio.sleep(0.05)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for r in responses:
            r.close()
    doc = {
        "events": [s.events for s in streams],
        "skipped": [s.skipped for s in streams],
        "notices": [s.notices for s in streams],
        "bytes": sum(s.nbytes for s in streams),
    }
    print(json.dumps(doc), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subscribers", type=int, required=True)
    args = parser.parse_args()
    return asyncio.run(_main(args.port, args.subscribers))


if __name__ == "__main__":
    raise SystemExit(main())
