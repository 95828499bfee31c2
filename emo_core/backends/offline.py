"""The embedded offline backend: real pretrained weights from registry packages, on a CPU.

It scores candidate labels for an image from its measured cues (face expressions mapped through
``emo_core.expression_map``); it has no text generator yet, so tasks write the reason from a
template and say so. It reads the image parts of the messages and ignores the instruction text:
the perception models do not read instructions.
"""

from __future__ import annotations

import math

from ..cues.perception import get_perceiver
from ..errors import CapabilityError
from ..expression_map import distribution
from ..settings import Settings
from .base import Backend, Message, media_paths


class OfflineBackend(Backend):
    name = "offline"
    capabilities = frozenset({"image", "score"})
    judges_from_cues = True

    def __init__(self, settings: Settings | None = None):
        settings = settings or Settings()
        self.perceiver = get_perceiver(settings.min_face_score, settings.max_faces)

    @property
    def model_label(self) -> str:
        return "offline: mediapipe faces + FER2013 mini-Xception + fixed expression-to-class table"

    def load(self) -> "OfflineBackend":
        self.perceiver.load()
        return self

    def score(self, messages: list[Message], candidates: list[str]) -> dict[str, float]:
        images = media_paths(messages, "image")
        if not images:
            raise CapabilityError("the offline backend scores images only; the messages hold no image")
        perception = self.perceiver.perceive_file(images[-1], scene=False)  # the label needs faces only
        probabilities, _basis = distribution(perception, list(candidates))
        return {label: math.log(p) for label, p in zip(candidates, probabilities)}
