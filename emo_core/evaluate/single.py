"""One image, every chosen instruction: the answers side by side (the first thing a visitor tries)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..backends import Backend
from ..labels import resolve_class_set
from ..settings import Settings
from .answers import ask_image, prepare_image, resolve_method
from .instructions import Instruction


def answers_per_instruction(image: str | Path, class_set: str, instructions: list[Instruction], backend: Backend,
                            settings: Settings, method: str = "auto") -> dict:
    """``{"rows": [{instruction, text, answer, prediction, unparsed_reason, abstained}], "method", "reads_instruction"}``."""
    labels = list(resolve_class_set(class_set).class_set.labels)
    method = resolve_method(backend, method)
    rows = []
    with tempfile.TemporaryDirectory(prefix="emolens-eval-") as workdir:
        path = prepare_image(Path(image), settings, Path(workdir) / "image.jpg")
        for instruction in instructions:
            text = instruction.render(labels)
            answer = ask_image(backend, path, text, labels, method, settings)
            rows.append({"instruction": instruction.id, "text": text, "answer": answer.answer,
                         "prediction": answer.prediction, "unparsed_reason": answer.unparsed_reason,
                         "abstained": answer.abstained})
    return {"rows": rows, "method": method, "reads_instruction": not backend.judges_from_cues}
