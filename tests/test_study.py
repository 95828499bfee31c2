"""The user study's library and command line: creating (and refusing to create), inviting, placement,
next-item order, one vote per rater and item under concurrency, revoking, closing, rate limits, export.

    .venv/bin/python -m pytest -q tests/test_study.py
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from emo_core import InvalidInputError, Settings
from emo_core.study import (EXPORT_COLUMNS, AlreadyVotedError, InvalidTokenError, PairsFileError, RateLimitedError,
                            StudyClosedError, StudyNameError, UnknownItemError, UnknownStudyError, VoteDesk,
                            close_study, create_study, export_votes, images_dir, invite_raters, join_caption_files,
                            list_studies, read_pairs, revoke_rater, study_info, study_store)
from emo_core.study.ratelimit import RateLimiter
from emo_core.study.studies import hash_token
from tests.study_helpers import SYSTEMS, make_study, token_of, write_images, write_pairs

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", vote_rate_per_rater=0, vote_rate_per_address=0)


def _nothing_created(settings: Settings) -> None:
    assert list_studies(settings) == []
    folder = images_dir(settings.data_dir)
    assert not folder.exists() or not any(folder.iterdir())
    assert study_store(settings.data_dir).read_one("SELECT COUNT(*) FROM study_items")[0] == 0


def test_create_and_invite(settings, tmp_path):
    study = make_study(settings, tmp_path, "humour-1", 5, 3)
    info = study_info(settings, "humour-1")
    assert (info.items, info.raters, info.closed) == (5, 3, None)
    assert len(set(study.tokens)) == 3 and all(len(token) >= 32 for token in study.tokens)
    stored = {row["token_hash"] for row in study_store(settings.data_dir).read("SELECT token_hash FROM study_raters")}
    assert stored == {hash_token(token) for token in study.tokens}  # only hashes are kept
    assert not any(token in stored for token in study.tokens)
    links = invite_raters(Settings(data_dir=settings.data_dir, study_base_url="https://example.org/app/"), "humour-1", 2)
    assert [number for number, _ in links] == [4, 5]
    assert all(link.startswith("https://example.org/app/vote?study=humour-1&token=") for _, link in links)
    # the images raters see are re-encoded copies named by content, not the researcher's files
    stored_images = sorted(path.name for path in images_dir(settings.data_dir).iterdir())
    assert len(stored_images) == 5 and all(name.endswith(".jpg") and "picture" not in name for name in stored_images)
    with pytest.raises(StudyNameError, match="exists"):
        create_study(settings, "humour-1", tmp_path / "pairs.csv")
    with pytest.raises(StudyNameError):
        create_study(settings, "../evil", tmp_path / "pairs.csv")


@pytest.mark.parametrize("header, rows, message", [
    (("image", "caption_a", "system_a", "caption_b"), [["images/picture0.png", "x", "s1", "y"]], "missing column system_b"),
    (("picture", "caption_a", "system_a", "caption_b", "system_b"), [], "missing column image "),
    (None, [["images/picture0.png", "x", "s1", "y", "s2"], ["images/nowhere.png", "x", "s1", "y", "s2"]],
     r"row 3: image 'images/nowhere.png' not found"),
    (None, [["images/picture0.png", "", "s1", "y", "s2"]], "row 2: empty caption_a"),
    (None, [["images/picture0.png", "x", "same", "y", "same"]], "both 'same'"),
    (None, [], "no pairs"),
])
def test_a_bad_pairs_file_creates_nothing(settings, tmp_path, header, rows, message):
    write_images(tmp_path / "images", 1)
    pairs = write_pairs(tmp_path / "pairs.csv", rows, **({"header": header} if header else {}))
    with pytest.raises(PairsFileError, match=message):
        create_study(settings, "bad", pairs)
    _nothing_created(settings)


def test_an_image_that_does_not_open_creates_nothing(settings, tmp_path):
    write_images(tmp_path / "images", 2)
    (tmp_path / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a picture")
    (tmp_path / "images" / "empty.png").write_bytes(b"")
    pairs = write_pairs(tmp_path / "pairs.csv", [
        ["images/picture0.png", "x", "s1", "y", "s2"], ["images/broken.jpg", "x", "s1", "y", "s2"],
        ["images/picture1.png", "x", "s1", "y", "s2"], ["images/empty.png", "x", "s1", "y", "s2"]])
    with pytest.raises(PairsFileError) as refused:
        create_study(settings, "bad", pairs)
    assert "row 3: image 'images/broken.jpg' does not open" in str(refused.value)
    assert "row 5: image 'images/empty.png'" in str(refused.value)
    assert str(tmp_path) not in str(refused.value)  # no server path in the message
    _nothing_created(settings)
    with pytest.raises(PairsFileError, match="no such file"):
        create_study(settings, "bad", tmp_path / "missing.csv")


def test_placement_is_balanced_per_rater_random_across_raters_and_what_the_rater_saw_is_recorded(settings, tmp_path):
    study = make_study(settings, tmp_path, "balance", 41, 30)
    rows = study_store(settings.data_dir).read(
        "SELECT p.rater_id, p.item_id, p.a_on_left FROM study_placements p")
    per_rater = Counter()
    per_item = Counter()
    sequences = {}
    for row in rows:
        per_rater[row["rater_id"]] += row["a_on_left"]
        per_item[row["item_id"]] += row["a_on_left"]
        sequences.setdefault(row["rater_id"], []).append(row["a_on_left"])
    assert all(count in (20, 21) for count in per_rater.values())  # 41 items: 20 or 21 with system_a on the left
    assert len({tuple(sequence) for sequence in sequences.values()}) == 30  # each rater has an order of its own
    # across 30 raters an item's count is about Binomial(30, 1/2): mean 15, variance 7.5 (the variance of 41
    # such counts has a standard error of about 1.7); one fixed pattern would give variance 0 or 225
    counts = list(per_item.values())
    mean = sum(counts) / len(counts)
    variance = sum((count - mean) ** 2 for count in counts) / (len(counts) - 1)
    assert abs(mean - 15) < 1 and 2.5 < variance < 15
    # voting "left" records the system whose caption was on the left of what the rater saw
    desk = VoteDesk(settings)
    seen = []
    for _ in range(10):
        shown = desk.next_item("balance", study.tokens[0])
        seen.append((shown.item, study.captions[shown.left], study.captions[shown.right]))
        desk.cast("balance", study.tokens[0], shown.item, "left")
    out = io.StringIO()
    export_votes(settings, "balance", out)
    exported = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(exported[0]) == EXPORT_COLUMNS
    assert [(int(row["item"]), row["left_system"], row["right_system"]) for row in exported] == seen
    assert {row["choice"] for row in exported} == {"left"} and {row["rater"] for row in exported} == {"1"}
    assert 2 <= sum(left == SYSTEMS[0] for _, left, _ in seen) <= 8


def test_next_item_is_unseen_fewest_votes_first_and_stays_on_screen_until_answered(settings, tmp_path):
    study = make_study(settings, tmp_path, "order", 6, 4)
    desk = VoteDesk(settings)
    first = desk.next_item("order", study.tokens[0])
    assert desk.next_item("order", study.tokens[0]).item == first.item  # a reload shows the same pair
    assert (first.position, first.total, first.progress) == (1, 6, "1 of 6")
    for token in study.tokens[:3]:  # three raters vote on items, leaving some with fewer votes
        for _ in range(2):
            shown = desk.next_item("order", token)
            desk.cast("order", token, shown.item, "tie")
    votes = Counter(row["number"] for row in study_store(settings.data_dir).read(
        "SELECT i.number FROM study_votes v JOIN study_items i ON i.id = v.item_id"))
    assert max(votes.values()) == 1 and len(votes) == 6  # fewest votes first spreads 6 votes over 6 items
    seen = set()
    last = study.tokens[3]
    while (shown := desk.next_item("order", last)) is not None:
        assert shown.item not in seen
        seen.add(shown.item)
        assert shown.progress == f"{len(seen)} of 6"
        desk.cast("order", last, shown.item, "skip" if len(seen) % 2 else "neither")
    assert seen == set(range(1, 7))
    assert desk.progress("order", last).text == "6 of 6" and desk.progress("order", last).done


def test_refusals_name_the_problem(settings, tmp_path):
    study = make_study(settings, tmp_path, "refuse", 3, 3)
    desk = VoteDesk(settings)
    token, other, third = study.tokens
    with pytest.raises(UnknownStudyError, match="does not exist"):
        desk.next_item("nope", token)
    with pytest.raises(InvalidTokenError, match="not valid"):
        desk.next_item("refuse", "guessed-token")
    with pytest.raises(InvalidTokenError):
        desk.next_item("refuse", "")
    shown = desk.next_item("refuse", token)
    with pytest.raises(InvalidInputError, match="choice must be"):
        desk.cast("refuse", token, shown.item, "both")
    with pytest.raises(UnknownItemError, match="no item 99"):
        desk.cast("refuse", token, 99, "left")
    unseen = ({1, 2, 3} - {shown.item}).pop()
    with pytest.raises(UnknownItemError, match="not been shown"):
        desk.cast("refuse", token, unseen, "left")
    desk.cast("refuse", token, shown.item, "right")
    with pytest.raises(AlreadyVotedError, match="already answered item"):
        desk.cast("refuse", token, shown.item, "left")
    revoke_rater(settings, "refuse", 2)
    with pytest.raises(InvalidTokenError, match="revoked"):
        desk.next_item("refuse", other)
    with pytest.raises(InvalidInputError, match="no rater 9"):
        revoke_rater(settings, "refuse", 9)
    pending = desk.next_item("refuse", third)
    close_study(settings, "refuse")
    for call in (lambda: desk.next_item("refuse", third), lambda: desk.cast("refuse", third, pending.item, "left")):
        with pytest.raises(StudyClosedError, match="closed"):
            call()
    with pytest.raises(StudyClosedError):
        invite_raters(settings, "refuse", 1)
    assert study_store(settings.data_dir).read_one("SELECT COUNT(*) FROM study_votes")[0] == 1


def test_thirty_two_concurrent_casts_for_one_item_record_one_vote(settings, tmp_path):
    study = make_study(settings, tmp_path, "race", 2, 33)
    desk = VoteDesk(settings)
    shown = desk.next_item("race", study.tokens[0])
    for token in study.tokens[1:]:
        desk.next_item("race", token)
    start = threading.Barrier(64)
    outcomes = Counter()
    lock = threading.Lock()

    def cast(token, choice):
        start.wait()
        try:
            desk.cast("race", token, shown.item, choice)
            outcome = "recorded"
        except AlreadyVotedError:
            outcome = "refused"
        except UnknownItemError:  # another rater may have been shown the other item first
            outcome = "other item"
        with lock:
            outcomes[(token == study.tokens[0], outcome)] += 1

    # 32 casts of one rater for one item, and at the same time one cast each of 32 other raters
    threads = [threading.Thread(target=cast, args=(study.tokens[0], ("left", "right", "tie", "neither")[i % 4]))
               for i in range(32)]
    threads += [threading.Thread(target=cast, args=(token, "left")) for token in study.tokens[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes[(True, "recorded")] == 1 and outcomes[(True, "refused")] == 31
    others_recorded = outcomes[(False, "recorded")]
    assert others_recorded + outcomes[(False, "other item")] == 32 and outcomes[(False, "refused")] == 0
    rows = study_store(settings.data_dir).read("SELECT rater_id, item_id FROM study_votes")
    assert len(rows) == 1 + others_recorded == len({(row["rater_id"], row["item_id"]) for row in rows})


CASTER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from emo_core import Settings
    from emo_core.study import AlreadyVotedError, VoteDesk
    data_dir, token, item, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    desk = VoteDesk(Settings(data_dir=Path(data_dir)))
    time.sleep(max(0.0, start - time.time()))
    try:
        desk.cast("race", token, item, "left")
        print("recorded")
    except AlreadyVotedError:
        print("refused")
""")


def test_thirty_two_processes_casting_for_one_item_record_one_vote(settings, tmp_path):
    study = make_study(settings, tmp_path, "race", 2, 1)
    shown = VoteDesk(settings).next_item("race", study.tokens[0])
    start = time.time() + 8  # every process imported and waiting before the first casts
    processes = [subprocess.Popen([sys.executable, "-c", CASTER, str(settings.data_dir), study.tokens[0],
                                   str(shown.item), str(start)], cwd=REPO, stdout=subprocess.PIPE, text=True)
                 for _ in range(32)]
    answers = Counter(process.communicate(timeout=120)[0].strip() for process in processes)
    assert [process.returncode for process in processes] == [0] * 32
    assert answers == {"recorded": 1, "refused": 31}
    assert study_store(settings.data_dir).read_one("SELECT COUNT(*) FROM study_votes")[0] == 1


def test_rate_limits_per_rater_and_per_address(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", vote_rate_per_rater=3, vote_rate_per_address=0)
    study = make_study(settings, tmp_path, "limits", 6, 2)
    desk = VoteDesk(settings)
    for _ in range(3):
        shown = desk.next_item("limits", study.tokens[0])
        desk.cast("limits", study.tokens[0], shown.item, "left")
    shown = desk.next_item("limits", study.tokens[0])
    with pytest.raises(RateLimitedError, match="too many votes"):
        desk.cast("limits", study.tokens[0], shown.item, "left")
    other = desk.next_item("limits", study.tokens[1])  # another rater is not slowed down
    desk.cast("limits", study.tokens[1], other.item, "left")
    by_address = VoteDesk(Settings(data_dir=tmp_path / "data", vote_rate_per_address=4))
    for _ in range(4):
        by_address.next_item("limits", study.tokens[1], address="198.51.100.7")
    with pytest.raises(RateLimitedError, match="your network"):
        by_address.next_item("limits", study.tokens[1], address="198.51.100.7")
    by_address.next_item("limits", study.tokens[1], address="198.51.100.8")
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert [limiter.allow("k") for _ in range(3)] == [True, True, False]
    now[0] = 60.5
    assert limiter.allow("k") and RateLimiter(0).allow("k")


def test_join_two_caption_files_into_pairs(tmp_path):
    images = write_images(tmp_path / "images", 3)
    with open(tmp_path / "ours.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["image", "caption", "backend", "model", "temperature", "seed"])
        for index, image in enumerate(images):
            writer.writerow([f"images/{image.name}", f"ours first {index}", "offline", "gemma", 0.9, 1])
            writer.writerow([f"images/{image.name}", f"ours second {index}", "offline", "gemma", 0.9, 2])
    with open(tmp_path / "people.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["image", "caption"])
        for index, image in enumerate(images[1:], start=1):
            writer.writerow([str(image), f"human {index}"])
    text, counts = join_caption_files(tmp_path / "ours.csv", tmp_path / "people.csv", system_b="human")
    assert counts == {"pairs": 2, "only_a": 1, "only_b": 0}
    (tmp_path / "pairs.csv").write_text(text)
    pairs = read_pairs(tmp_path / "pairs.csv")
    assert [(p.caption_a, p.system_a, p.caption_b, p.system_b) for p in pairs] == [
        ("ours first 1", "offline:gemma", "human 1", "human"), ("ours first 2", "offline:gemma", "human 2", "human")]
    assert [p.image_path.name for p in pairs] == ["picture1.png", "picture2.png"]
    with pytest.raises(PairsFileError, match="give --system-a"):
        join_caption_files(tmp_path / "people.csv", tmp_path / "people.csv")


def _cli(*args, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emo_core.study", "--data-dir", str(data_dir), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_command_line(settings, tmp_path):
    images = write_images(tmp_path / "images", 4)
    write_pairs(tmp_path / "pairs.csv", [[f"images/{image.name}", f"joke {i}", "model-x", f"pun {i}", "human"]
                                         for i, image in enumerate(images)])
    created = _cli("create", "cli", "--pairs", str(tmp_path / "pairs.csv"), data_dir=settings.data_dir)
    assert created.returncode == 0, created.stderr
    invited = _cli("--base-url", "https://study.example", "invite", "cli", "--raters", "2", data_dir=settings.data_dir)
    links = [line.split("\t")[1] for line in invited.stdout.splitlines()]
    assert len(links) == 2 and all(link.startswith("https://study.example/vote?study=cli&token=") for link in links)
    desk = VoteDesk(settings)
    for link in links:
        for _ in range(4):
            shown = desk.next_item("cli", token_of(link))
            desk.cast("cli", token_of(link), shown.item, "left" if shown.left.startswith("joke") else "right")
    results = json.loads(_cli("results", "cli", "--json", "--resamples", "200", "--chart", str(tmp_path / "c.png"),
                              data_dir=settings.data_dir).stdout)
    assert {"votes", "ties", "neither", "p_value", "systems"} <= set(results)
    assert results["systems"]["model-x"]["wins"] == 8 and results["systems"]["model-x"]["share"] == 1.0
    assert set(results["systems"]["human"]) >= {"wins", "share", "ci_low", "ci_high"}
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    text = _cli("results", "cli", "--resamples", "100", data_dir=settings.data_dir).stdout
    assert "model-x: 8 of 8 decisive votes = 100.0%" in text
    exported = _cli("export", "cli", data_dir=settings.data_dir).stdout.splitlines()
    assert exported[0] == ",".join(EXPORT_COLUMNS) and len(exported) == 9
    assert _cli("close", "cli", data_dir=settings.data_dir).returncode == 0
    assert study_info(settings, "cli").closed
    refused = _cli("create", "cli2", "--pairs", str(tmp_path / "missing.csv"), data_dir=settings.data_dir)
    assert refused.returncode == 2 and "no such file" in refused.stderr and "Traceback" not in refused.stderr
    unknown = _cli("results", "nope", data_dir=settings.data_dir)
    assert unknown.returncode == 2 and "no study named 'nope'" in unknown.stderr


def test_settings_validate_the_study_fields():
    assert Settings(study_base_url="https://x.example/app/").study_link_base() == "https://x.example/app"
    assert Settings(host="0.0.0.0", port=8000).study_link_base() == "http://127.0.0.1:8000"
    for bad in ({"study_base_url": "ftp://x"}, {"study_base_url": "https://x/?a=1"}, {"vote_rate_per_rater": -1},
                {"vote_rate_per_address": -5}, {"study_image_max_side": 0}):
        with pytest.raises(ValueError):
            Settings(**bad)
