"""The Instruction sensitivity tab: over gradio_client and in the headless browser."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from emo_core import Settings
from tests.conftest import served_app
from tests.eval_fakes import write_colour_dataset

OFFLINE = "offline (CPU, bundled models)"


def test_client_single_image_every_instruction_side_by_side(client, images):
    table, note = client.predict(handle_file(str(images["astronaut"])), "fer7", ["categorical", "sensitivity_1"],
                                 "Which of {classes} fits?\n\nName one of {classes}, [click](http://x.test).",
                                 api_name="/sensitivity_image")
    assert [row[0] for row in table["data"]] == ["categorical", "sensitivity_1", "typed_1", "typed_2"]
    assert {row[2] for row in table["data"]} == {"happy"}
    assert "0 by construction" in note


def test_client_dataset_demo_set(client):
    status, metrics, chart, confusion, changed, summary = client.predict(
        "demo", None, "", "fer7", [OFFLINE], ["sensitivity_1", "sensitivity_2"], "", api_name="/sensitivity_dataset")
    rows = metrics["data"]
    assert [row[1] for row in rows] == ["sensitivity_1", "sensitivity_2"] and rows[0][2] == 16
    assert rows[0][3:8] == rows[1][3:8]  # the offline label does not read the instruction
    assert "Sensitivity (accuracy) **0.0000**" in status and "0 by construction" in status
    assert "not a benchmark" in status
    assert confusion["headers"][-1] == "unparsed" and not changed["data"]
    assert Path(summary).name == "sensitivity_summaries.json"


def _zip(path: Path, source: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in source.rglob("*.png"):
            archive.write(file, f"set/{file.relative_to(source).as_posix()}")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def test_client_dataset_from_a_zip_and_bad_zips(client, tmp_path):
    source = write_colour_dataset(tmp_path / "src", [(10, "joy"), (60, "fear"), (120, "sadness")])
    status, metrics, *_ = client.predict("zip", handle_file(str(_zip(tmp_path / "ok.zip", source))), "", "emotion6",
                                         [OFFLINE], ["categorical", "sensitivity_2"], "", api_name="/sensitivity_dataset")
    assert metrics["data"][0][2] == 3 and metrics["data"][0][7] == 3  # no faces: the offline default names nothing
    slip = _zip(tmp_path / "slip.zip", source, {"../../evil.png": b"x"})
    with pytest.raises(Exception, match="points outside the zip"):
        client.predict("zip", handle_file(str(slip)), "", "emotion6", [OFFLINE], ["categorical", "sensitivity_2"], "",
                       api_name="/sensitivity_dataset")
    outside = _zip(tmp_path / "labels.zip", source, {"set/extra/weird.png": (source / "joy" / "img000.png").read_bytes()})
    with pytest.raises(Exception, match="'extra'.*is not a class|duplicate"):
        client.predict("zip", handle_file(str(outside)), "", "emotion6", [OFFLINE], ["categorical", "sensitivity_2"],
                       "", api_name="/sensitivity_dataset")
    with pytest.raises(Exception, match="at least two instructions"):
        client.predict("demo", None, "", "fer7", [OFFLINE], ["categorical"], "", api_name="/sensitivity_dataset")


def test_server_folders_and_other_models_follow_the_operator(tmp_path):
    root = tmp_path / "datasets"
    write_colour_dataset(root / "mine", [(10, "joy"), (60, "fear")])
    settings = Settings(preload=False, data_dir=tmp_path / "data", eval_data_root=str(root), eval_max_samples=1)
    with served_app(settings) as url:
        client = Client(url, verbose=False)
        status, metrics, *_ = client.predict("folder", None, "mine", "emotion6", [OFFLINE],
                                             ["categorical", "sensitivity_1"], "", api_name="/sensitivity_dataset")
        assert metrics["data"][0][2] == 1 and "subset of 1 of the 2 samples" in status
        with pytest.raises(Exception, match="outside the folder this server allows"):
            client.predict("folder", None, "../", "emotion6", [OFFLINE], ["categorical", "sensitivity_1"], "",
                           api_name="/sensitivity_dataset")
        with pytest.raises(Exception, match="choosing another model is turned off"):
            client.predict(handle_file(str(root / "mine" / "joy" / "img000.png")), "emotion6", ["categorical"], "",
                           "hf", "Salesforce/instructblip-vicuna-7b", api_name="/sensitivity_image")


@pytest.mark.browser
def test_browser_dataset_mode_and_cancel(page, artifacts):
    page.get_by_role("tab", name="Instruction sensitivity").click()
    page.get_by_role("tab", name="Dataset").click()
    page.click("#sens-run")
    page.locator("#sens-metrics", has_text="sensitivity_2").wait_for(timeout=120_000)
    page.locator("#sens-status", has_text="Sensitivity (accuracy)").wait_for()
    assert "0 by construction" in page.locator("#sens-status").inner_text()
    page.locator("#sens-chart").wait_for()
    page.screenshot(path=str(artifacts / "sensitivity_tab.png"), full_page=True)
    page.click("#sens-run")
    page.click("#sens-cancel")
    page.locator("#sens-status", has_text="Cancelled").wait_for()


def test_each_request_removes_the_folders_it_made(tmp_path, images, monkeypatch):
    import tempfile

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    source = write_colour_dataset(tmp_path / "src", [(10, "joy"), (60, "fear")])
    with served_app(Settings(preload=False, data_dir=tmp_path / "data")) as url:
        client = Client(url, verbose=False)
        client.predict(handle_file(str(images["astronaut"])), "fer7", ["categorical"], "", api_name="/sensitivity_image")
        client.predict("zip", handle_file(str(_zip(tmp_path / "ok.zip", source))), "", "emotion6", [OFFLINE],
                       ["categorical", "sensitivity_2"], "", api_name="/sensitivity_dataset")
        with pytest.raises(Exception):
            client.predict("zip", handle_file(str(_zip(tmp_path / "slip.zip", source, {"../x.png": b"x"}))), "",
                           "emotion6", [OFFLINE], ["categorical", "sensitivity_2"], "", api_name="/sensitivity_dataset")
        deadline = time.monotonic() + 10  # a handler's last update arrives just before it finishes
        while list(private.glob("emolens-*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not list(private.glob("emolens-*"))
