"""Humour captions in the library: OCR on drawn memes, the offline captions on real pictures, the checks,
seeds, bad input, and the batch command (``python -m emo_core.humour``).

    .venv/bin/python -m pytest -q tests/test_humour.py
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from rapidfuzz import fuzz

from emo_core.errors import BackendError, InvalidInputError
from emo_core.humour import humour_captions, humour_captions_stream, prompt_version
from emo_core.humour import __main__ as humour_cli
from emo_core.humour.checks import CaptionCheck, finish_caption, near_duplicate
from emo_core.humour.ocr import read_text
from emo_core.llm.small_lm import GenerationStats
from tests import humour_media

FACE_WORDS = re.compile(r"\b(?:faces?|smil\w*|happ\w*|grin\w*|laugh\w*|cheer\w*|joy\w*)\b", re.IGNORECASE)
FACE_MENTION = re.compile(r"\b(?:faces?|facial|smil\w*|frown\w*|grin\w*)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("humour")
    drawn = {
        "face": humour_media.smiling_face(),
        "landscape": humour_media.empty_landscape(),
        "meme": humour_media.meme("ONE DOES NOT SIMPLY", "WALK INTO MORDOR"),
    }
    paths = {}
    for name, image in drawn.items():
        paths[name] = folder / f"{name}.png"
        image.save(paths[name])
    return paths


@pytest.fixture(scope="module")
def offline_results(pictures, settings) -> dict:
    """Three offline captions (temperature 0.8, seeds from 0) for the smiling face and the empty landscape."""
    return {name: humour_captions(pictures[name], 3, 0.8, 0, settings=settings) for name in ("face", "landscape")}


# ---------------------------------------------------------------------------------------------
# OCR


@pytest.mark.parametrize("top, bottom", [("ONE DOES NOT SIMPLY", "WALK INTO MORDOR"),
                                         ("Nobody:", "Me at 3 am eating cereal"),
                                         ("TRAFFIC JAM", "AGAIN")])
def test_ocr_reads_the_words_of_a_drawn_meme(top, bottom):
    text = read_text(humour_media.meme(top, bottom))
    assert len(text.lines) == 2 and all(0.6 <= score <= 1 for score in text.scores)
    # The recogniser sometimes runs two words together ("WALKINTO"); every letter must be right, in order.
    squeezed = [line.replace(" ", "").lower() for line in text.lines]
    assert squeezed == [top.replace(" ", "").lower(), bottom.replace(" ", "").lower()]
    read = " ".join(text.lines).lower()
    assert all(word.lower() in read for word in (top + " " + bottom).split())


def test_ocr_finds_no_words_where_there_are_none(images):
    from PIL import Image

    assert read_text(humour_media.empty_landscape()).lines == []
    assert read_text(Image.open(images["astronaut"])).lines == []
    assert read_text(Image.open(images["cat"])).lines == []  # its fur reads as "0" at 0.66: a lone character is dropped


# ---------------------------------------------------------------------------------------------
# the offline default on real pictures


def test_offline_captions_are_k_distinct_captions_with_their_seeds(offline_results):
    for name, result in offline_results.items():
        texts = [caption.text for caption in result.captions]
        assert result.complete and len(texts) == 3 and not result.shortfall, (name, texts, result.rejected)
        for index, first in enumerate(texts):
            for second in texts[index + 1:]:
                assert fuzz.token_sort_ratio(first.lower(), second.lower()) < 80, (first, second)
        seeds = [caption.seed for caption in result.captions]
        assert seeds == sorted(set(seeds)) and seeds[0] == 0 and seeds[-1] < 9  # at most 3 seeds per caption
        assert {caption.temperature for caption in result.captions} == {0.8}
        # every seed asked is either a caption or a rejected text, each rejected with its reason
        assert sorted(seeds + [r.seed for r in result.rejected]) == list(range(len(seeds) + len(result.rejected)))
        assert all(r.problem for r in result.rejected)
        assert result.reads_picture is False and "270M" in result.model
        assert result.prompt_version == prompt_version("humour_fewshot")
        assert all(0 < len(text.split()) <= 60 and text[0].isupper() and text[-1] in ".!?\"'" for text in texts)


def test_offline_captions_depend_on_the_picture_and_mention_what_was_measured(offline_results):
    face, landscape = offline_results["face"], offline_results["landscape"]
    assert face.cues[0].startswith("one face, expression happy") and face.attributes["face_count"] == 1
    assert landscape.cues[0] == "no face found" and landscape.attributes["face_count"] == 0
    assert not {c.text for c in face.captions} & {c.text for c in landscape.captions}
    # the smiling face is talked about; the empty landscape never gets a face
    assert any(FACE_WORDS.search(caption.text) for caption in face.captions), [c.text for c in face.captions]
    assert not any(FACE_MENTION.search(caption.text) for caption in landscape.captions), \
        [c.text for c in landscape.captions]


def test_a_caption_is_written_again_from_its_seed_and_temperature(offline_results, pictures, settings):
    second = offline_results["face"].captions[1]
    again = humour_captions(pictures["face"], 1, second.temperature, second.seed, settings=settings)
    assert [(c.text, c.seed) for c in again.captions] == [(second.text, second.seed)]


def test_offline_captions_stream_and_read_the_words_in_the_image(pictures, settings):
    updates = []
    for result in humour_captions_stream(pictures["meme"], 2, 0.8, 5, settings=settings):
        updates.append((len(result.captions), result.draft.text if result.draft else None, result.complete))
    assert updates[0] == (0, None, False) and updates[-1][::2] == (2, True)
    drafts = [draft for _, draft, _ in updates if draft]
    assert len(drafts) >= 3  # word by word, not all at once
    assert [line.replace(" ", "") for line in result.words] == ["ONEDOESNOTSIMPLY", "WALKINTOMORDOR"]
    assert result.cues[0] == "no face found"
    assert {"first_caption", "captions", "perception", "ocr", "total"} <= set(result.timings)
    assert result.timings["first_caption"] <= result.timings["total"]


# ---------------------------------------------------------------------------------------------
# a scripted language model: bounded retries, honest shortfalls, failures


class ScriptedLM:
    """Stands in for the offline model: the text for each seed comes from ``by_seed`` (or ``default``)."""

    def __init__(self, by_seed: dict[int, str] | None = None, default: str = "", fail_at: int | None = None):
        self.by_seed, self.default, self.fail_at = by_seed or {}, default, fail_at
        self.calls: list[dict] = []
        self.resets = 0  # one-token requests on the examples alone, before each caption (see _OfflineWriter)
        self.stats = None

    def stream(self, prompt, **options):
        if prompt.endswith("Cues: #"):
            assert options == {"max_tokens": 1, "temperature": 0.0}
            self.resets += 1
            return iter([" x"])
        self.calls.append(dict(options, prompt=prompt))
        text = self.by_seed.get(options["seed"], self.default)
        if options["seed"] == self.fail_at:
            raise BackendError("the language model process stopped answering")
        self.stats = GenerationStats(10, 5, 0.1, 0.01, 50.0, 0.0, "stop")
        return iter(re.findall(r"\s*\S+", text))


@pytest.fixture()
def scripted_lm(monkeypatch):
    def install(lm: ScriptedLM) -> ScriptedLM:
        monkeypatch.setattr("emo_core.llm.small_lm.get_small_lm", lambda settings=None: lm)
        return lm

    return install


def test_duplicates_are_replaced_by_further_seeds_within_a_bound(scripted_lm, pictures, settings):
    lm = scripted_lm(ScriptedLM({0: "The dog owns the sofa now.", 1: "Now the dog owns the sofa.",
                                 2: "Brightness 0.63 and no face found.", 3: "A cat would never sit on a lake."}))
    result = humour_captions(pictures["landscape"], 2, 0.7, 0, settings=settings)
    assert [(c.text, c.seed) for c in result.captions] == [("The dog owns the sofa now.", 0),
                                                             ("A cat would never sit on a lake.", 3)]
    assert [(r.seed, r.problem.split(" (")[0]) for r in result.rejected] == [
        (1, "nearly the same as an earlier caption"), (2, "the caption reads out the measured cue values")]
    assert [call["seed"] for call in lm.calls] == [0, 1, 2, 3] and lm.resets == 4
    assert {call["temperature"] for call in lm.calls} == {0.7}
    assert lm.calls[0]["prompt"].endswith("Words in the image: none\nCaption:")
    assert "Cues: no face found; moderately bright" in lm.calls[0]["prompt"]
    assert not result.shortfall


def test_fewer_than_k_captions_are_said_plainly(scripted_lm, pictures, settings):
    lm = scripted_lm(ScriptedLM(default="Every seed writes this very same joke."))
    result = humour_captions(pictures["landscape"], 3, 0.9, 10, settings=settings)
    assert [c.seed for c in result.captions] == [10]
    assert len(lm.calls) == 9  # three seeds per caption asked for, no more
    assert result.shortfall == ("only 1 of 3 captions could be written: 8 of the 9 texts the model wrote did not "
                                "pass the checks")


def test_temperature_zero_stops_at_the_first_repeat(scripted_lm, pictures, settings):
    lm = scripted_lm(ScriptedLM(default="Every seed writes this very same joke."))
    result = humour_captions(pictures["landscape"], 3, 0.0, 0, settings=settings)
    assert len(result.captions) == 1 and len(lm.calls) == 2
    assert "temperature 0 is greedy decoding" in result.shortfall


def test_a_model_that_fails_ends_the_request_with_what_was_written(scripted_lm, pictures, settings):
    scripted_lm(ScriptedLM({0: "The first joke is on the house."}, default="Unused.", fail_at=1))
    result = humour_captions(pictures["landscape"], 3, 0.8, 0, settings=settings)
    assert [c.text for c in result.captions] == ["The first joke is on the house."]
    assert result.failure.startswith("the model failed: the language model process stopped answering")
    assert result.shortfall.startswith("only 1 of 3 captions could be written: the model failed")


# ---------------------------------------------------------------------------------------------
# the checks


@pytest.mark.parametrize("raw, finish, expected", [
    (" The dog owns the sofa now", "stop", ("The dog owns the sofa now.", "")),
    ('Caption: "the dog owns the sofa now."\nCaption: another', "stop", ("The dog owns the sofa now.", "")),
    (" One. Two sentences are fine here. A third is cut.", "stop", ("One. Two sentences are fine here.", "")),
    (" The dog owns the sofa and the", "length", ("", "the model ran out of tokens before finishing a sentence")),
    (" Too short.", "stop", ("", "the model wrote too little")),
    ("   \n", "stop", ("", "the model wrote nothing")),
])
def test_finish_caption(raw, finish, expected):
    assert finish_caption(raw, finish) == expected


def test_the_caption_checks():
    check = CaptionCheck(["one face, expression happy (0.93)", "bright (brightness 0.71)", "objects: balloon"],
                         ["BEST DAY EVER"], examples=["That happy face already ate half the birthday cake."])
    assert check.problem("One happy face, bright, with a balloon.") == "the caption only restates the measured cues"
    assert check.problem("A face that reads as happy (0.93).") == "the caption reads out the measured cue values"
    assert check.problem("Best day ever!") == "the caption only repeats the words written in the image"
    assert check.problem("That happy face already ate half of the birthday cake.") == \
        "the caption copies one of the prompt's examples"
    lifted = check.problem("She clearly ate half the birthday cake before the balloon popped.")
    assert lifted.startswith("the caption lifts an example's phrase about things no cue mentions (")
    assert set(lifted.split("(")[1].rstrip(")").split(", ")) == {"ate", "half", "birthday", "cake"}
    assert check.problem("The clown took my balloon, the clown took my balloon again.").startswith(
        "the language model repeated itself")
    assert check.problem("Nobody came to the party, so the balloon gave up.") == \
        "the caption says nobody is there, but a face was found"
    assert check.problem("Her smile says the balloon was worth every cent.") == ""
    empty = CaptionCheck(["no face found", "dark (brightness 0.20)"], [])
    assert empty.problem("His grin lights up the dark room.") == "the caption describes a face, but no face was found"
    assert empty.problem("Nobody home, and the lights went out too.") == ""


def test_near_duplicates():
    earlier = ["The dog owns the sofa now.", "Mondays should be illegal."]
    assert near_duplicate("Now the dog owns the sofa!", earlier) == "The dog owns the sofa now."
    assert near_duplicate("The dog owns the couch now.", earlier) == "The dog owns the sofa now."
    assert near_duplicate("Mondays should be banned by law.", earlier) == ""
    assert near_duplicate("The cat has a plan for the sofa.", earlier) == ""


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"plain text, not a picture", "not an image")])
def test_a_file_that_is_not_an_image_is_refused(tmp_path, settings, content, message):
    bad = tmp_path / "upload.jpg"
    bad.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message):
        humour_captions(bad, 2, settings=settings)


@pytest.mark.parametrize("n, temperature, seed, message", [
    (0, 0.8, 0, "ask for 1 to 5 captions, not 0"), (6, 0.8, 0, "ask for 1 to 5 captions, not 6"),
    (3, -0.1, 0, "temperature must be between 0 and 2"), (3, float("nan"), 0, "temperature must be between"),
    (3, 0.8, -1, "seed must be between 0 and"), ("three", 0.8, 0, "must be whole numbers"),
])
def test_out_of_range_requests_are_refused_before_any_work(pictures, settings, n, temperature, seed, message):
    with pytest.raises(InvalidInputError, match=message):
        next(humour_captions_stream(pictures["meme"], n, temperature, seed, settings=settings))


# ---------------------------------------------------------------------------------------------
# the batch command


def test_the_batch_command_writes_one_row_per_caption_and_resumes(scripted_lm, pictures, tmp_path, capsys,
                                                                  monkeypatch):
    lm = scripted_lm(ScriptedLM({0: "First joke about nothing at all.", 1: "Second joke, also about nothing.",
                                 2: "A third joke nobody asked for."}))
    monkeypatch.setenv("EMO_PRELOAD", "false")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("landscape", "meme"):
        (folder / pictures[name].name).write_bytes(pictures[name].read_bytes())
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    (folder / "notes.txt").write_text("ignored: not an image file name")
    out = tmp_path / "out" / "captions.csv"
    assert humour_cli.main([str(folder), "--out", str(out), "--n", "2", "--seed", "0", "--temperature", "0.5"]) == 1
    assert "4 captions for 2 images (2 written now, 0 already done), 1 failed" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(Path(r["image"]).name, r["caption_index"], r["caption"], r["seed"]) for r in rows] == [
        ("broken.jpg", "", "", ""),
        ("landscape.png", "1", "First joke about nothing at all.", "0"),
        ("landscape.png", "2", "Second joke, also about nothing.", "1"),
        ("meme.png", "1", "First joke about nothing at all.", "0"),
        ("meme.png", "2", "Second joke, also about nothing.", "1"),
    ]
    assert "not an image" in rows[0]["error"] and all(not r["error"] for r in rows[1:])
    good = rows[1:]
    assert {(r["backend"], r["model"], r["temperature"], r["prompt_version"], r["reads_picture"]) for r in good} == {
        ("offline", "Gemma 3 270M base (llama.cpp)", "0.5", prompt_version("humour_fewshot"), "False")}
    assert good[0]["words_in_image"] == "" and good[2]["words_in_image"].replace(" ", "") == \
        "ONEDOESNOTSIMPLY/WALKINTOMORDOR"
    assert good[0]["cues"].startswith("no face found; ") and len(good[0]["sha256"]) == 64
    calls = len(lm.calls)
    # a rerun asks the model nothing for the images already done, and writes the same captions
    assert humour_cli.main([str(folder), "--out", str(out), "--n", "2", "--seed", "0", "--temperature", "0.5"]) == 1
    assert "(0 written now, 2 already done)" in capsys.readouterr().out
    assert len(lm.calls) == calls
    assert [r["caption"] for r in csv.DictReader(out.open(encoding="utf-8"))] == [r["caption"] for r in rows]
    # another request (another seed) is new work
    assert humour_cli.main([str(folder / "meme.png"), "--out", str(out), "--n", "1", "--seed", "2"]) == 0
    assert [r["caption"] for r in csv.DictReader(out.open(encoding="utf-8"))] == ["A third joke nobody asked for."]


def test_the_batch_command_refuses_bad_arguments(tmp_path, capsys):
    for arguments, message in ((["--n", "6"], "ask for 1 to 5 captions"), (["--temperature", "3"], "temperature"),
                               (["--backend", "gpt"], "unknown backend")):
        with pytest.raises(SystemExit):
            humour_cli.main([str(tmp_path), "--out", str(tmp_path / "c.csv"), *arguments])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        humour_cli.main([str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "c.csv")])
    assert "not found: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        humour_cli.main([str(tmp_path), "--out", str(tmp_path / "c.csv")])
    assert "no image files found" in capsys.readouterr().err
