"""A scripted text backend for evaluation tests: answers depend on the image's pixels and the
instruction, every call is counted, and it can be told to fail or to go slowly.

    python -m tests.eval_fakes DATA RUN_DIR SLEEP   # runs an evaluation with it (the SIGKILL test)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from emo_core.backends import Backend, media_paths, text_of


class ScriptedBackend(Backend):
    """Reads the image's mean red value (the test images are flat colours) and answers from a table:
    ``answers[(red_bucket, phrase)]`` where ``phrase`` is the first instruction key found in the text."""

    name = "hf"  # recorded like a text model
    capabilities = frozenset({"image", "generate"})

    def __init__(self, answers: dict[tuple[int, str], str], sleep: float = 0.0, fail_after: int | None = None):
        self.answers, self.sleep, self.fail_after = answers, sleep, fail_after
        self.calls = 0

    def generate(self, messages, **options) -> str:
        from PIL import Image

        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("the model server went away")
        time.sleep(self.sleep)
        with Image.open(media_paths(messages, "image")[-1]) as image:
            red = round(image.convert("RGB").getpixel((0, 0))[0] / 10)
        text = text_of(messages)
        phrase = next(p for (bucket, p) in self.answers if bucket == red and p in text)
        return self.answers[(red, phrase)]


def write_colour_dataset(folder: Path, labelled: list[tuple[int, str]]) -> Path:
    """One 64x48 flat image per (red value, label), in a folder per label."""
    from PIL import Image

    for index, (red, label) in enumerate(labelled):
        (folder / label).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (red, 100, 100)).save(folder / label / f"img{index:03d}.png")
    return folder


# The subprocess test's script: four images, two instructions, answers differ by phrasing.
KILL_DATA = [(10, "joy"), (20, "anger"), (30, "fear"), (40, "joy"), (50, "sadness"), (60, "surprise")]


def kill_answers() -> dict[tuple[int, str], str]:
    answers = {}
    for red, label in KILL_DATA:
        answers[(round(red / 10), "Please select")] = f"Predict emotion: {label}"
        answers[(round(red / 10), "From the given")] = "Predicted emotion: joy" if red < 45 else "I cannot tell"
    return answers


def main(data: str, run_dir: str, sleep: str) -> None:
    from emo_core.evaluate import instructions, load_dataset, run_evaluation

    dataset = load_dataset(data, "emotion6")
    backend = ScriptedBackend(kill_answers(), sleep=float(sleep))
    outcome = run_evaluation(dataset, run_dir, instructions.by_ids("categorical,sensitivity_1"), backend=backend,
                             method="generate", n_boot=200)
    print(f"calls={backend.calls} answered={outcome.answered} cached={outcome.cached}")


if __name__ == "__main__":
    main(*sys.argv[1:])
