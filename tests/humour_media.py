"""Pictures for the humour-caption tests and benchmark, drawn here (none in git).

- ``meme``: meme-style words (white, black outline) above and below a plain drawn background;
- ``empty_landscape``: a sky gradient over a green field: no face, no object, no words;
- ``smiling_face``: a real photo of a smiling person from a pinned registry package (``registry_faces``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def meme(top: str, bottom: str, size: tuple[int, int] = (640, 480), colour=(150, 90, 160)) -> Image.Image:
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size[1] // 9)
    for text, y in ((top, size[1] // 8), (bottom, size[1] * 7 // 8)):
        draw.text((size[0] // 2, y), text, font=font, fill="white", anchor="mm", stroke_width=3, stroke_fill="black")
    return image


def empty_landscape(size: tuple[int, int] = (640, 480)) -> Image.Image:
    width, height = size
    horizon = height * 5 // 8
    rows = np.linspace(0.0, 1.0, horizon)[:, None]
    sky = (np.array([110, 160, 230]) * (1 - rows[..., None]) + np.array([200, 220, 250]) * rows[..., None])
    field = np.broadcast_to(np.array([80, 150, 70]), (height - horizon, 1, 3))
    column = np.concatenate([sky, field]).astype(np.uint8)
    return Image.fromarray(np.repeat(column, width, axis=1))


def smiling_face() -> Image.Image:
    from tests.registry_faces import LABELLED_FACES

    (face,) = [face for face in LABELLED_FACES if face.name == "jsPsych happy_face_1"]
    assert face.expression == "happy"
    return face.image()
