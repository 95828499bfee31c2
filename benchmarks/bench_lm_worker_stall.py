"""How fast a stopped reason-model worker is found and replaced. Prints figures.

    .venv/bin/python -m benchmarks.bench_lm_worker_stall            # 3 rounds, the default deadlines
    .venv/bin/python -m benchmarks.bench_lm_worker_stall --rounds 5 --token-deadline 3

Each round, on the bundled model in a ``WorkerLM`` (the file in the user cache, as the app runs it):
- mid-reason: ``write_reason`` streams, the child is stopped (SIGSTOP) at its first piece; seconds from
  the stop to the final item (the template), and the problem the result gives;
- idle: the child is stopped between requests; seconds from the request to the template;
- after each: seconds until the next request has a model-written reason (the new child's start, its
  prompt read with nothing cached, the reason).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import time

IMAGE_CUES = ["one face, expression happy (0.96)", "bright (brightness 0.70)", "colourful (colorfulness 65)",
              "objects: dog, frisbee"]
TEMPLATE = "(template)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--token-deadline", type=float, default=None, help="default: the Settings default")
    args = parser.parse_args(argv)

    from emo_core.llm.gguf_variant import ensure_reason_model
    from emo_core.llm.lm_worker import WorkerLM
    from emo_core.llm.reason_writer import write_reason
    from emo_core.settings import Settings

    settings = Settings()
    token_deadline = args.token_deadline or settings.llm_token_deadline
    lm = WorkerLM(ensure_reason_model(), start_deadline=settings.llm_start_deadline,
                  restart_deadline=settings.llm_restart_deadline,
                  first_token_deadline=settings.llm_first_token_deadline, token_deadline=token_deadline)
    started = time.perf_counter()
    lm.load()
    print(f"deadlines: token (silence) {token_deadline:g} s, first token {settings.llm_first_token_deadline:g} s, "
          f"restart {settings.llm_restart_deadline:g} s; first start {time.perf_counter() - started:.2f} s")

    def reason():
        return write_reason("amusement", IMAGE_CUES, modality="image", fallback=TEMPLATE, lm=lm)

    def next_model_reason() -> float:
        clock = time.perf_counter()
        result = reason().finish()
        return time.perf_counter() - clock if result.by_model else float("nan")

    next_model_reason()  # the prompt is cached, as after the app's warm-up
    figures: dict[str, list[float]] = {"mid-reason": [], "idle": [], "next reason": []}
    for round_number in range(1, args.rounds + 1):
        stream, stopped_at, shown = reason(), None, 0
        for text in stream:
            if stopped_at is None and text != TEMPLATE:
                os.kill(lm.pid, signal.SIGSTOP)
                stopped_at = time.perf_counter()
            shown += 1
        mid = time.perf_counter() - stopped_at if stopped_at is not None else float("nan")
        result = stream.result
        after_mid = next_model_reason()

        os.kill(lm.pid, signal.SIGSTOP)
        clock = time.perf_counter()
        idle_result = reason().finish()
        idle = time.perf_counter() - clock
        after_idle = next_model_reason()

        print(f"round {round_number}: mid-reason stop -> template in {mid:.2f} s ({shown} items shown, "
              f"template: {not result.by_model}); idle stop -> template in {idle:.2f} s "
              f"(template: {not idle_result.by_model}); next model reason {after_mid:.2f} s / {after_idle:.2f} s")
        figures["mid-reason"].append(mid)
        figures["idle"].append(idle)
        figures["next reason"] += [after_mid, after_idle]
    print(f"problem shown: {result.problem}")
    for name, values in figures.items():
        print(f"{name}: median {statistics.median(values):.2f} s, max {max(values):.2f} s over {len(values)}")
    lm.close()


if __name__ == "__main__":
    main()
