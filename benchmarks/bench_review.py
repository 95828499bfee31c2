"""Benchmark of the review desk: decision latency with concurrent annotators, through the HTTP API. Prints figures.

    .venv/bin/python -m benchmarks.bench_review                      # 10 annotators x 30 decisions, ~1 s reading
    .venv/bin/python -m benchmarks.bench_review --think 0            # no reading time: 10 requests always in flight
    .venv/bin/python -m benchmarks.bench_review --annotators 4 --decisions 50

The app (``python app.py``) runs in a process of its own over a fresh data folder holding a generated run
(3 samples per image, 10% overlap) and one reviewer account per annotator. Each annotator is a signed-in
HTTP session in a thread of this process, all starting together; one decision is one ``/review_decide``
call through Gradio's HTTP API (``POST .../gradio_api/run/review_decide``: the desk's events skip the
queue), mostly accept, some edits and rejects, timed from the POST until the answer (which carries the
next sample) is in. Between decisions an annotator reads the sample for ``--think`` seconds on average (uniform in 0.5 to
1.5 times it; people take several seconds, so 1 s is a busy desk); ``--think 0`` is the stress case where
every annotator's next request leaves as soon as the last answer is in. ``--client gradio`` uses
gradio_client sessions instead (its own overhead included). The same decisions made in-process (``ReviewDesk.decide`` + ``next_item``, no HTTP) are
timed too, to tell the store's share from the server's.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "benchmark password"


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return (f"p50 {1000 * pick(0.5):.1f} ms, p95 {1000 * pick(0.95):.1f} ms, max {1000 * ordered[-1]:.1f} ms "
            f"(n={len(ordered)})")


def _prepare(folder: Path, images: int, annotators: int) -> Path:
    from emo_core.accounts import Accounts
    from emo_core.review import import_run
    from emo_core.store import Store
    from tests.review_runs import write_run

    data = folder / "data"
    write_run(folder / "run", n_images=images)
    report = import_run(Store.for_data_dir(data), folder / "run", 0.10)
    accounts = Accounts.for_data_dir(data)
    for number in range(annotators):
        accounts.add(f"annotator{number}", PASSWORD, "reviewer")
    print(f"store: {report.added} samples ({report.overlap_added} for two annotators), {annotators} accounts")
    return data


def _choice(rng: random.Random, text: str) -> tuple[str, str, str | None]:
    roll = rng.random()
    if roll < 0.15:
        return "edit", text.rstrip() + " (edited)", None
    if roll < 0.30:
        return "reject", "", "wrong emotion"
    return "accept", "", None


class RestSession:
    """One signed-in annotator calling the desk's events over HTTP (``/gradio_api/run/<api_name>``) with httpx."""

    def __init__(self, url: str, name: str):
        import httpx

        self.http = httpx.Client(base_url=url, timeout=60)
        self.http.post("login", data={"username": name, "password": PASSWORD}).raise_for_status()

    def predict(self, *data, api_name: str):
        answer = self.http.post(f"gradio_api/run/{api_name.lstrip('/')}", json={"data": list(data)})
        answer.raise_for_status()
        return answer.json()["data"]


def over_http(data: Path, annotators: int, decisions: int, client_kind: str, think: float) -> None:
    from gradio_client import Client

    from tests.app_process import free_port, start_app, stop_app

    port = free_port()
    env = dict(os.environ, EMO_DATA_DIR=str(data), EMO_PRELOAD="false", EMO_PORT=str(port))
    server = start_app([], port, env=env, ready_path="review/", timeout=60)
    url = f"http://127.0.0.1:{port}/"
    try:
        if client_kind == "gradio":
            clients = [Client(url + "review/", auth=(f"annotator{n}", PASSWORD), verbose=False, download_files=False)
                       for n in range(annotators)]
        else:
            clients = [RestSession(url + "review/", f"annotator{n}") for n in range(annotators)]
        latencies: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(annotators)

        def annotate(number: int) -> None:
            rng = random.Random(number)
            client = clients[number]
            shown = client.predict(api_name="/review_next")
            barrier.wait()
            for _ in range(decisions):
                if shown[0] is None:
                    break
                time.sleep(think * rng.uniform(0.5, 1.5))
                action, edited, reason = _choice(rng, shown[6])
                started = time.perf_counter()
                shown = client.predict(shown[0], action, edited, reason, "", api_name="/review_decide")
                with lock:
                    latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        threads = [threading.Thread(target=annotate, args=(n,)) for n in range(annotators)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        print(f"HTTP /review_decide ({client_kind} client), {annotators} annotators at once, {think:g} s reading time: "
              f"{_percentiles(latencies)}; {len(latencies) / elapsed:.1f} decisions/s; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        stop_app(server)


def in_process(data: Path, annotators: int, decisions: int) -> None:
    from emo_core.review import ReviewDesk
    from emo_core.store import Store

    store = Store.for_data_dir(data)
    latencies: list[float] = []
    lock = threading.Lock()

    def annotate(number: int) -> None:
        rng = random.Random(100 + number)
        desk = ReviewDesk(store, lease_seconds=900)
        name = f"annotator{number}"
        item = desk.next_item(name)
        for _ in range(decisions):
            if item is None:
                break
            action, edited, reason = _choice(rng, item.conversation_text)
            started = time.perf_counter()
            desk.decide(item.item_id, name, action, edited_text=edited or None, reason=reason or "")
            item = desk.next_item(name)
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=annotate, args=(n,)) for n in range(annotators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"in-process decide + next, {annotators} threads: {_percentiles(latencies)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=10)
    parser.add_argument("--decisions", type=int, default=30, help="decisions per annotator")
    parser.add_argument("--images", type=int, default=250, help="images of the generated run (3 samples each)")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds an annotator reads a sample")
    parser.add_argument("--client", choices=("http", "gradio"), default="http",
                        help="http: POST to the events with httpx; gradio: gradio_client")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = _prepare(Path(folder), args.images, args.annotators)
        over_http(data, args.annotators, args.decisions, args.client, args.think)
        in_process(data, args.annotators, args.decisions)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
