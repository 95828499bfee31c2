"""The review desk's library: importing runs, the queue and its leases, decisions, overlap and adjudication,
agreement, the dashboard and the accepted samples handed to the generator's export."""

from __future__ import annotations

import json
import multiprocessing
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from emo_core.review import (ConversationFormatError, ReviewDesk, ReviewError, RunFolderError, accepted_versions,
                             attribute_rows, caption, cohen_kappa, dashboard, decision_rows, edit_distance, from_text,
                             import_run, to_text)
from emo_core.store import Store
from tests.review_runs import write_run

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def store(tmp_path) -> Store:
    return Store.for_data_dir(tmp_path / "data")


def _desk(store, clock=None, lease=60.0) -> ReviewDesk:
    return ReviewDesk(store, lease_seconds=lease, clock=clock or Clock())


# -- import --------------------------------------------------------------------------------------

def test_import_is_idempotent_and_keeps_the_overlap_share_as_the_run_grows(tmp_path, store):
    rows = write_run(tmp_path / "run", n_images=4)  # 12 samples
    report = import_run(store, tmp_path / "run", overlap=0.25)
    assert (report.run_id, report.added, report.already_imported, report.overlap_added) == ("run-test", 12, 0, 3)
    again = import_run(store, tmp_path / "run", overlap=0.25)
    assert (again.added, again.already_imported, again.overlap_added) == (0, 12, 0)
    assert store.read_one("SELECT COUNT(*) FROM review_items")[0] == 12
    # the generator resumed and wrote 4 more images' samples: 24 in all, 6 of them overlap
    more = write_run(tmp_path / "run", n_images=8)
    grown = import_run(store, tmp_path / "run", overlap=0.25)
    assert (grown.added, grown.already_imported, grown.overlap_added) == (12, 12, 3)
    assert store.read_one("SELECT COUNT(*) FROM review_items WHERE reviews_needed = 2")[0] == 6
    assert {row["id"] for row in more} >= {row["id"] for row in rows}


def test_overlap_choice_depends_only_on_the_ids(tmp_path):
    write_run(tmp_path / "run", n_images=10)
    chosen = []
    for name in ("a", "b"):
        store = Store.for_data_dir(tmp_path / name)
        import_run(store, tmp_path / "run", overlap=0.1)
        chosen.append({row[0] for row in store.read("SELECT sample_id FROM review_items WHERE reviews_needed = 2")})
    assert len(chosen[0]) == 3 and chosen[0] == chosen[1]


def test_a_run_without_run_id_gets_a_stable_derived_id(tmp_path, store):
    write_run(tmp_path / "one", run_id=None)
    write_run(tmp_path / "two", run_id=None)
    first = import_run(store, tmp_path / "one", 0.1).run_id
    assert first.startswith("run-") and first == import_run(store, tmp_path / "two", 0.1).run_id
    write_run(tmp_path / "other", run_id=None, seed=5)
    assert import_run(store, tmp_path / "other", 0.1).run_id != first


def test_bad_rows_are_reported_and_a_torn_tail_waits_for_the_next_import(tmp_path, store):
    rows = write_run(tmp_path / "run", n_images=2, torn_tail='{"id": "half-writ')
    with open(tmp_path / "run" / "samples.jsonl", "r+", encoding="utf-8") as handle:
        content = handle.read()
        handle.seek(0)
        turns = rows[0]["conversations"]
        bad = [{"id": "no-type", "image": "x.png", "conversations": turns},
               {"id": "bad-turns", "image": "x.png", "type": "reasoning",
                "conversations": [{"from": "gpt", "value": "hi"}, {"from": "human", "value": "?"}]},
               {"id": "escape", "image": "../../../etc/passwd", "type": "reasoning", "conversations": turns}]
        handle.write("".join(json.dumps(row) + "\n" for row in bad) + content)
    report = import_run(store, tmp_path / "run", 0.0)
    assert report.added == 7 and report.torn_tail_bytes == len('{"id": "half-writ')
    assert any("no-type" in p and "type" in p for p in report.problems)
    assert any("bad-turns" in p and "turn 1" in p for p in report.problems)
    assert any("escape" in p and "image root" in p for p in report.problems)
    escaped = ReviewDesk(store).item(store.read_one("SELECT item_id FROM review_items WHERE sample_id = 'escape'")[0])
    assert escaped.image_path is None  # never served from outside the run's image root
    with pytest.raises(RunFolderError, match="no samples.jsonl"):
        import_run(store, tmp_path, 0.0)


def test_cli_imports_and_reports(tmp_path):
    write_run(tmp_path / "run", n_images=3)
    command = [sys.executable, "-m", "emo_core.review", "--data-dir", str(tmp_path / "data"), "import", str(tmp_path / "run"),
               "--overlap", "0.5"]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "run run-test: 9 samples added (4 for two annotators), 0 already imported" in first.stdout
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "0 samples added (0 for two annotators), 9 already imported" in second.stdout


# -- the queue and decisions ---------------------------------------------------------------------

def test_decisions_accept_edit_reject_skip(tmp_path, store):
    rows = write_run(tmp_path / "run", n_images=2, types=("reasoning",))
    import_run(store, tmp_path / "run", 0.0)
    desk = _desk(store)
    first = desk.next_item("ann")
    assert first.sample_id == rows[0]["id"] and first.image_path.is_file()
    assert desk.next_item("ann").item_id == first.item_id  # a reload keeps the same sample
    edited = first.conversation_text.replace(rows[0]["conversations"][1]["value"], "Warm light and smiles.")
    assert desk.decide(first.item_id, "ann", "edit", edited_text=edited) == "accepted"
    second = desk.next_item("ann")
    with pytest.raises(ReviewError, match="reject reason"):
        desk.decide(second.item_id, "ann", "reject", reason="because")
    with pytest.raises(ReviewError, match="note"):
        desk.decide(second.item_id, "ann", "reject", reason="other")
    assert desk.decide(second.item_id, "ann", "skip") == "pending"
    assert desk.next_item("ann").item_id == second.item_id  # skipped, but nothing else is left
    assert desk.decide(second.item_id, "ann", "reject", reason="wrong emotion", note="looks sad") == "rejected"
    assert desk.next_item("ann") is None
    with pytest.raises(ReviewError, match="already been decided"):
        desk.decide(second.item_id, "ann", "accept")
    original = json.loads(store.read_one("SELECT sample FROM review_items WHERE item_id = ?", (first.item_id,))[0])
    assert original == rows[0]  # the generated original is kept as it was
    accepted = accepted_versions(tmp_path / "data", "run-test")
    assert list(accepted) == [rows[0]["id"]]
    assert accepted[rows[0]["id"]]["conversations"][1]["value"] == "Warm light and smiles."
    assert accepted[rows[0]["id"]]["conversations"][0]["value"].startswith("<image>\n")
    assert accepted[rows[0]["id"]]["label"] == rows[0]["label"]
    assert [row["action"] for row in decision_rows(store)] == ["edit", "skip", "reject"]
    assert desk.progress("ann")["decided"] == {"accept": 0, "edit": 1, "reject": 1, "skip": 1}


def test_skipped_samples_come_after_the_others(tmp_path, store):
    write_run(tmp_path / "run", n_images=3, types=("categorical",))
    import_run(store, tmp_path / "run", 0.0)
    desk = _desk(store)
    order = []
    first = desk.next_item("ann")
    desk.decide(first.item_id, "ann", "skip")
    while (item := desk.next_item("ann")) is not None:
        order.append(item.item_id)
        desk.decide(item.item_id, "ann", "accept")
    assert order[-1] == first.item_id and len(order) == 3


def test_an_edit_that_changes_nothing_is_an_accept_and_bad_edits_are_refused(tmp_path, store):
    write_run(tmp_path / "run", n_images=1, types=("conversation",))
    import_run(store, tmp_path / "run", 0.0)
    desk = _desk(store)
    item = desk.next_item("ann")
    with pytest.raises(ConversationFormatError, match="alternate"):
        desk.decide(item.item_id, "ann", "edit", edited_text="### gpt\nhello")
    desk.decide(item.item_id, "ann", "edit", edited_text=item.conversation_text)
    assert [row["action"] for row in decision_rows(store)] == ["accept"]
    assert store.read_one("SELECT COUNT(*) FROM review_versions")[0] == 0


def test_a_lease_expires_and_the_sample_returns_to_the_queue(tmp_path, store):
    write_run(tmp_path / "run", n_images=1, types=("reasoning",))
    import_run(store, tmp_path / "run", 0.0)
    clock = Clock()
    desk = _desk(store, clock, lease=30.0)
    held = desk.next_item("alice")
    assert desk.next_item("bob") is None  # leased to alice
    clock.now += 29.0
    assert desk.next_item("bob") is None
    clock.now += 2.0  # alice walked away
    taken = desk.next_item("bob")
    assert taken.item_id == held.item_id
    with pytest.raises(ReviewError, match="another annotator"):
        desk.decide(held.item_id, "alice", "accept")
    clock.now += 31.0  # bob walked away too; nobody holds it: alice's late decision still counts
    assert desk.decide(held.item_id, "alice", "accept") == "accepted"
    assert desk.next_item("bob") is None


def _drain(store: Store, annotator: str, seen: list, barrier: threading.Barrier | None = None):
    desk = ReviewDesk(store, lease_seconds=600)
    if barrier:
        barrier.wait()
    while (item := desk.next_item(annotator)) is not None:
        seen.append((annotator, item.item_id, item.reviews_needed))
        desk.decide(item.item_id, annotator, "accept")


def _check_no_sample_shared(store, seen):
    holders: dict[int, set] = {}
    for annotator, item_id, _ in seen:
        holders.setdefault(item_id, set()).add(annotator)
    needed = dict(store.read("SELECT item_id, reviews_needed FROM review_items"))
    assert set(holders) == set(needed)  # every sample was handed out
    for item_id, annotators in holders.items():
        assert len(annotators) == needed[item_id]  # single: one annotator; overlap: exactly two
    assert len(seen) == sum(needed.values())  # nobody got a sample twice
    assert store.read_one("SELECT COUNT(*) FROM review_items WHERE state != 'accepted'")[0] == 0


def test_concurrent_annotators_in_threads_never_share_a_single_review_sample(tmp_path, store):
    write_run(tmp_path / "run", n_images=20)  # 60 samples
    import_run(store, tmp_path / "run", 0.1)
    seen: list = []
    barrier = threading.Barrier(6)
    threads = [threading.Thread(target=_drain, args=(store, f"ann{n}", seen, barrier)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _check_no_sample_shared(store, seen)
    assert len({annotator for annotator, *_ in seen}) > 1


def _drain_in_process(data_dir: str, annotator: str, start, queue):
    seen: list = []
    start.wait()
    _drain(Store.for_data_dir(Path(data_dir)), annotator, seen)
    queue.put(seen)


def test_concurrent_annotators_in_processes_never_share_a_single_review_sample(tmp_path, store):
    write_run(tmp_path / "run", n_images=15)  # 45 samples
    import_run(store, tmp_path / "run", 0.2)
    context = multiprocessing.get_context("spawn")
    start, queue = context.Event(), context.Queue()
    workers = [context.Process(target=_drain_in_process, args=(str(tmp_path / "data"), f"p{n}", start, queue))
               for n in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    seen = [entry for _ in workers for entry in queue.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    _check_no_sample_shared(store, seen)


# -- overlap, adjudication, agreement ------------------------------------------------------------

def test_overlap_pairs_resolve_or_go_to_adjudication(tmp_path, store):
    rows = write_run(tmp_path / "run", n_images=4, types=("reasoning",))
    import_run(store, tmp_path / "run", 1.0)  # every sample to two annotators
    desk = _desk(store)
    first_alice, first_bob = desk.next_item("alice"), desk.next_item("bob")
    assert first_alice.item_id == first_bob.item_id
    carol = desk.next_item("carol")
    assert carol.item_id != first_alice.item_id  # both seats of that sample are taken
    desk.decide(carol.item_id, "carol", "skip")  # and carol gives her seat back
    ids = [row["id"] for row in rows]
    text = to_text(rows[2]["conversations"])
    plans = {
        ids[0]: [("accept", {}), ("accept", {})],
        ids[1]: [("reject", {"reason": "wrong emotion"}), ("reject", {"reason": "factually wrong"})],
        ids[2]: [("edit", {"edited_text": text + " Really."}), ("edit", {"edited_text": text + " Really."})],
        ids[3]: [("accept", {}), ("reject", {"reason": "not grounded in the image"})],
    }
    states, by_id = {}, {}
    for _ in rows:
        item = desk.next_item("alice")
        by_id[item.sample_id] = item
        action, options = plans[item.sample_id][0]
        assert desk.decide(item.item_id, "alice", action, **options) == "pending"  # blind: one decision resolves nothing
    assert desk.next_item("alice") is None
    for _ in rows:
        item = desk.next_item("bob")
        action, options = plans[item.sample_id][1]
        states[item.sample_id] = desk.decide(item.item_id, "bob", action, **options)
    assert states == {ids[0]: "accepted", ids[1]: "rejected", ids[2]: "accepted", ids[3]: "conflict"}
    assert desk.next_conflict("alice") is None  # alice reviewed it: someone else settles it
    conflict = desk.next_conflict("carol")
    assert conflict.item.sample_id == ids[3]
    assert [(o.annotator, o.action) for o in conflict.opinions] == [("alice", "accept"), ("bob", "reject")]
    with pytest.raises(ReviewError, match="someone else"):
        desk.adjudicate(conflict.item.item_id, "bob", "accept")
    assert desk.adjudicate(conflict.item.item_id, "carol", "edit",
                           edited_text=conflict.item.conversation_text + " Settled.") == "accepted"
    accepted = accepted_versions(tmp_path / "data", "run-test")
    assert set(accepted) == {ids[0], ids[2], ids[3]}
    assert accepted[ids[2]]["conversations"][-1]["value"].endswith("Really.")
    assert accepted[ids[3]]["conversations"][-1]["value"].endswith("Settled.")
    assert accepted[ids[0]] == rows[0]
    figures = dashboard(store)
    assert figures["counts"]["reasoning"] == {"pending": 0, "accepted": 3, "rejected": 1, "conflict": 0}
    assert figures["acceptance_by_type"]["reasoning"] == 0.75
    assert figures["reject_reasons"] == {"wrong emotion": 1, "factually wrong": 1, "not grounded in the image": 1}
    agreement = figures["agreement"]["reasoning"]
    # pairs (alice, bob): (a, a), (r, r), (a, a), (a, r): p_o = 3/4; p_e = (3/4)(2/4) + (1/4)(2/4) = 1/2
    assert agreement["pairs"] == 4 and agreement["observed_agreement"] == 0.75
    assert agreement["kappa"] == pytest.approx(0.5)
    assert agreement["edits"] == 2 and agreement["mean_edit_distance"] == pytest.approx(
        edit_distance(text, text + " Really."))
    assert figures["annotators"]["carol"] == {"adjudicated": 1, "skip": 1}


def test_two_different_edits_are_a_conflict(tmp_path, store):
    write_run(tmp_path / "run", n_images=1, types=("reasoning",))
    import_run(store, tmp_path / "run", 1.0)
    desk = _desk(store)
    item = desk.next_item("alice")
    desk.next_item("bob")
    desk.decide(item.item_id, "alice", "edit", edited_text=item.conversation_text + " A")
    assert desk.decide(item.item_id, "bob", "edit", edited_text=item.conversation_text + " B") == "conflict"
    assert accepted_versions(store.path.parent, "run-test") == {}


def test_accepted_versions_is_none_for_a_run_never_imported(tmp_path, store):
    assert accepted_versions(tmp_path / "nowhere", "run-test") is None
    assert not (tmp_path / "nowhere").exists()  # asking created nothing
    write_run(tmp_path / "run", n_images=1)
    import_run(store, tmp_path / "run", 0.0)
    assert accepted_versions(tmp_path / "data", "another-run") is None
    assert accepted_versions(tmp_path / "data", "run-test") == {}


def test_kappa_on_a_hand_computed_case():
    first = list("aaaarraara")
    second = list("aararaaara")
    # p_o = 8/10; each rater: 7 a, 3 r -> p_e = 0.49 + 0.09 = 0.58; kappa = 0.22 / 0.42 = 11/21
    assert cohen_kappa(first, second) == pytest.approx(11 / 21)
    assert cohen_kappa(list("aaaa"), list("aaaa")) is None  # undefined: one label throughout
    assert cohen_kappa([], []) is None
    assert cohen_kappa(list("ar"), list("ra")) == pytest.approx(-1.0)


@pytest.mark.parametrize("seed", range(6))
def test_kappa_matches_sklearn(seed):
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(seed)
    n = rng.randrange(5, 200)
    first = [rng.choice(("accept", "reject")) for _ in range(n)]
    second = [label if rng.random() < 0.7 else rng.choice(("accept", "reject")) for label in first]
    if len(set(first) | set(second)) < 2:
        first[0], second[0] = "accept", "reject"
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second))


def test_edit_distance_is_normalised_levenshtein():
    assert edit_distance("kitten", "sitting") == pytest.approx(3 / 7)  # 3 edits, longer string 7
    assert edit_distance("same", "same") == 0.0 and edit_distance("abc", "xyz") == 1.0


# -- text shown to annotators --------------------------------------------------------------------

def test_conversation_text_round_trips_and_keeps_the_image_token_first():
    turns = [{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "A cat.\n\nIt rests."},
             {"from": "human", "value": "Mood?"}, {"from": "gpt", "value": "### not a header\ncalm"}]
    text = to_text(turns)
    assert text.startswith("### human\nWhat is shown?") and "<image>" not in text
    assert from_text(text) == turns
    for bad, message in [("hello", "start the text"), ("### human\nq", "without an answer"),
                         ("### human\n\n### gpt\na", "empty"), ("### human\n<image> q\n### gpt\na", "<image>")]:
        with pytest.raises(ConversationFormatError, match=message):
            from_text(bad)


def test_attributes_and_caption_are_read_with_their_sources(tmp_path):
    row = write_run(tmp_path / "run", n_images=1, types=("reasoning",))[0]
    assert attribute_rows(row) == [("emotion", "amusement", "given"), ("brightness", "0.61", "measured"),
                                   ("colorfulness", "0.33", "measured")]
    assert caption(row) == "A drawn scene number 0."
    assert attribute_rows({"attributes": [{"name": "scene", "value": "beach", "source": "given"}]}) == [
        ("scene", "beach", "given")]
    assert caption({"provenance": {"caption": "from the captioner"}}) == "from the captioner"
