"""The frozen encoders' features on disk, keyed by the clip's content and the encoder.

    cache = FeatureCache(folder)
    cache.get(clip_sha256, encoder_id)          # a numpy vector, or None
    cache.put(clip_sha256, encoder_id, vector)

One ``.npy`` file per (encoder, clip) under ``folder/<encoder id>/<clip sha256>.npy``, written atomically,
so a crashed run leaves no half file and two runs (stage 1, stage 2) can share the folder. The encoder
id (``encoder_id``) digests the encoder's config, its weights and how its input is prepared, so a
changed encoder never reads another's features. ``hits`` / ``misses`` count lookups.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


class FeatureCache:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.hits = self.misses = 0

    def path(self, clip: str, encoder: str) -> Path:
        return self.folder / encoder / f"{clip}.npy"

    def get(self, clip: str, encoder: str) -> np.ndarray | None:
        path = self.path(clip, encoder)
        try:
            value = np.load(path)
        except (FileNotFoundError, ValueError, OSError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, clip: str, encoder: str, value: np.ndarray) -> None:
        path = self.path(clip, encoder)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            np.save(out, np.asarray(value))
        os.replace(staging, path)


def encoder_id(name: str, module, preparation: dict) -> str:
    """A short digest of an encoder: its config, every weight and how its input is prepared."""
    digest = hashlib.sha256()
    digest.update(name.encode())
    digest.update(module.config.to_json_string(use_diff=False).encode())
    digest.update(json.dumps(preparation, sort_keys=True).encode())
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return f"{name}-{digest.hexdigest()[:16]}"
