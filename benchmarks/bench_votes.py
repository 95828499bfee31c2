"""Benchmark of the study's vote API under load: concurrent raters voting through the served app's HTTP API.

    .venv/bin/python -m benchmarks.bench_votes                  # 32 raters x 100 votes, 100 items
    .venv/bin/python -m benchmarks.bench_votes --raters 8 --votes 20

The app runs in a process of its own (rate limits off); each rater is an asyncio task that asks
``/vote_next`` once and then casts on ``/vote_cast`` (which answers with the next item, as the page
uses it) through gradio's HTTP API (``POST /gradio_api/run/NAME``; the vote events are not queued).
``--think S`` makes raters read for S seconds on average before each vote, as people do. Afterwards the store is read: every
vote the server acknowledged must be there exactly once (lost = acknowledged but missing; double =
more rows than distinct rater/item pairs). Prints p50/p95/max latency of the casts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from tests.app_process import free_port, start_app, stop_app

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CHOICES = ("left", "right", "tie", "neither")


def prepare(data_dir: Path, items: int, raters: int) -> list[str]:
    from emo_core import Settings
    from emo_core.study import create_study, invite_raters
    from tests.study_helpers import token_of, write_images, write_pairs

    settings = Settings(data_dir=data_dir)
    images = write_images(data_dir.parent / "images", items)
    write_pairs(data_dir.parent / "pairs.csv", [[str(image), f"joke {i}", "model-x", f"pun {i}", "human"]
                                               for i, image in enumerate(images)])
    create_study(settings, "bench", data_dir.parent / "pairs.csv")
    return [token_of(link) for _, link in invite_raters(settings, "bench", raters)]


async def call(client, base: str, name: str, data: list, session: str) -> list:
    """One call of a named event over gradio's HTTP API (the vote events are unqueued: one POST each);
    raises RuntimeError with the app's message on a refusal. ``session`` is the client's session hash, as
    gradio_client and the page send it (without one gradio builds a new session state per request)."""
    answer = await client.post(f"{base}gradio_api/run/{name}", json={"data": data, "session_hash": session})
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.status_code}: {answer.text[:200]}")
    return answer.json()["data"]


async def rater(client, base: str, token: str, votes: int, think: float, rng: random.Random, record: dict) -> None:
    """Asks for the first item, then casts ``votes`` votes; each cast answers with the next item. A cast whose
    connection broke is sent again, as a client would: "already answered" then means the first one counted."""
    import httpx

    session = f"bench-{rng.random():.12f}"
    started = time.perf_counter()
    card = (await call(client, base, "vote_next", ["bench", token], session))[0]
    record["next"].append(time.perf_counter() - started)
    for _ in range(votes):
        if card["done"]:
            return
        if think:
            await asyncio.sleep(rng.expovariate(1 / think))
        item, choice = card["item"], rng.choice(CHOICES)
        started = time.perf_counter()
        for attempt in range(3):
            try:
                card = (await call(client, base, "vote_cast", ["bench", token, item, choice], session))[0]
                break
            except httpx.TransportError:
                record["broken"] += 1
            except RuntimeError as exc:
                if attempt and "already answered" in str(exc):  # the broken attempt was recorded
                    card = (await call(client, base, "vote_next", ["bench", token], session))[0]
                    break
                record["refused"].append(str(exc))
                card = (await call(client, base, "vote_next", ["bench", token], session))[0]
                item = None
                break
        else:
            raise RuntimeError("three broken connections in a row")
        if item is None:
            continue
        record["cast"].append(time.perf_counter() - started)
        record["acknowledged"].append((token, item, choice))


async def load(base: str, tokens: list[str], votes: int, think: float) -> tuple[dict, float]:
    import httpx

    record = {"next": [], "cast": [], "refused": [], "acknowledged": [], "broken": 0}
    limits = httpx.Limits(max_connections=2 * len(tokens) + 8, max_keepalive_connections=2 * len(tokens) + 8)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(rater(client, base, token, votes, think, random.Random(index), record)
                               for index, token in enumerate(tokens)))
        return record, time.perf_counter() - started


def check(data_dir: Path, tokens: list[str], acknowledged: list[tuple]) -> dict:
    from emo_core.study import study_store
    from emo_core.study.studies import hash_token

    store = study_store(data_dir)
    number_of = {row["token_hash"]: row["id"] for row in store.read("SELECT id, token_hash FROM study_raters")}
    rows = store.read("SELECT v.rater_id, i.number AS item, v.choice FROM study_votes v "
                      "JOIN study_items i ON i.id = v.item_id")
    stored = {(row["rater_id"], row["item"]): row["choice"] for row in rows}
    lost = sum(stored.get((number_of[hash_token(token)], item)) != choice for token, item, choice in acknowledged)
    return {"rows": len(rows), "distinct": len(stored), "lost": lost, "double": len(rows) - len(stored)}


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=32)
    parser.add_argument("--votes", type=int, default=100, help="votes per rater")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean seconds a rater reads before voting (exponential; 0: vote at once, a stress test)")
    args = parser.parse_args()
    load_before = " ".join(f"{value:.1f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        tokens = prepare(data_dir, args.items, args.raters)
        port = free_port()
        log = Path(folder) / "app.log"
        with open(log, "wb") as out:
            process = start_app(["--data-dir", str(data_dir), "--port", str(port), "--no-preload",
                                 "--vote-rate-per-rater", "0", "--vote-rate-per-address", "0"], port, output=out,
                                timeout=180)
        try:
            record, seconds = asyncio.run(load(f"http://127.0.0.1:{port}/", tokens, args.votes, args.think))
        finally:
            still_running = process.poll() is None
            stop_app(process)
            if not still_running:
                print("the app stopped during the run; its log ends with:\n", log.read_text()[-3000:])
        counts = check(data_dir, tokens, record["acknowledged"])
    cast_ms = [1000 * value for value in record["cast"]]
    next_ms = [1000 * value for value in record["next"]]
    print(f"{args.raters} raters x {args.votes} votes on {args.items} items, {os.cpu_count()} CPU cores, "
          f"think time {args.think:g} s, load average before {load_before}")
    print(f"acknowledged {len(record['acknowledged'])}, refused {len(record['refused'])}, broken connections "
          f"{record['broken']} (resent), stored rows {counts['rows']}; lost {counts['lost']}, double-counted "
          f"{counts['double']}")
    print(f"cast latency  p50 {percentile(cast_ms, 50):.0f} ms, p95 {percentile(cast_ms, 95):.0f} ms, "
          f"max {max(cast_ms):.0f} ms")
    print(f"first next-item call  p50 {percentile(next_ms, 50):.0f} ms, max {max(next_ms):.0f} ms")
    print(f"{len(record['acknowledged']) / seconds:.0f} votes/s over {seconds:.1f} s (each cast answers with the next item)")
    for message in record["refused"][:5]:
        print("refused:", message)


if __name__ == "__main__":
    main()
