"""Benchmark: full-text search latency (`POST /search` service path) over many messages.

Starts the server's services in-process on a throwaway embedded PostgreSQL, has
one user send `--messages` messages (words drawn with a Zipf-like skew from a
vocabulary of 5 000) spread over 10 rooms through the normal event pipeline,
then times searches for common, middling and rare words, by rank and by
recency, 10 results with counts.

    python -m benchmarks.search [--messages 100000] [--queries 60]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from homeserver.config import Config, DatabaseConfig
from homeserver.server import HomeServer
from homeserver.services.sessions import Requester
from homeserver.storage.users import create_user

ROOMS = 10
VOCABULARY = [f"w{i}x{(i * 7919) % 997}" for i in range(5000)]
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]


async def run(messages: int, queries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        user = "@bench:bench.local"
        config = Config(server_name="bench.local", data_dir=Path(tmp), rc_exempt_users=(user,),
                        database=DatabaseConfig(), presence=Config().presence)
        hs = await HomeServer.create(config)
        try:
            await create_user(hs.database.pool, user, None, False, int(time.time() * 1000))
            requester = Requester(user, "BENCH", False, b"")
            rooms = [await hs.rooms.create_room(requester, {"preset": "private_chat"}) for _ in range(ROOMS)]
            rng = random.Random(3)
            start = time.perf_counter()

            async def fill(room_id: str, count: int, offset: int) -> None:
                for i in range(count):
                    body = " ".join(rng.choices(VOCABULARY, WEIGHTS, k=rng.randint(3, 20)))
                    await hs.rooms.send(requester, room_id, "m.room.message", f"t{offset + i}",
                                        {"msgtype": "m.text", "body": body})

            per_room = messages // ROOMS
            await asyncio.gather(*(fill(room, per_room, n * per_room) for n, room in enumerate(rooms)))
            print(f"sent {per_room * ROOMS} messages in {time.perf_counter() - start:.0f} s")
            for label, words in (("common", VOCABULARY[:5]), ("middling", VOCABULARY[200:205]),
                                 ("rare", VOCABULARY[4000:4005])):
                for order in ("rank", "recent"):
                    timings = []
                    for q in range(queries):
                        body = {"search_categories": {"room_events": {
                            "search_term": words[q % len(words)], "order_by": order, "filter": {"limit": 10}}}}
                        began = time.perf_counter()
                        result = await hs.rooms.search(requester, body, None)
                        timings.append((time.perf_counter() - began) * 1000)
                    count = result["search_categories"]["room_events"]["count"]
                    print(f"{label:9} words ({count:6} hits), order {order:6}: median {statistics.median(timings):7.1f} ms,"
                          f" p95 {sorted(timings)[int(len(timings) * 0.95)]:7.1f} ms")
        finally:
            await hs.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.queries))


if __name__ == "__main__":
    main()
