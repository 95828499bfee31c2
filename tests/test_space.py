"""The Space image's recipe: the Dockerfile reads into replayable steps, the Space front matter agrees
with it, and the build scripts are valid bash. The real build (scripts/check_space_build.sh, a
debootstrap chroot, ~30 min) is not run here."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def _load_steps_module():
    spec = importlib.util.spec_from_file_location("dockerfile_steps", SCRIPTS / "dockerfile_steps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


steps_module = _load_steps_module()
parse, DockerfileError = steps_module.parse, steps_module.DockerfileError


def _dockerfile():
    return parse((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def _env(steps) -> dict[str, str]:
    env = {}
    for step in steps:
        if step.instruction == "ENV":
            env.update(word.split("=", 1) for word in step.words)
    return env


def test_dockerfile_reads_into_the_steps_the_build_needs():
    steps = _dockerfile()
    kinds = [step.instruction for step in steps]
    assert steps[0].words == ("python:3.11-slim-bookworm",)  # what check_space_build.sh emulates
    runs = [step.words[0] for step in steps if step.instruction == "RUN"]
    setup = runs.index("bash scripts/setup.sh")
    # a C/C++ toolchain is installed before the set-up compiles llama-cpp-python, and apt's lists go
    assert any("build-essential" in run and "rm -rf /var/lib/apt/lists" in run for run in runs[:setup])
    assert any("useradd" in run and "--uid 1000" in run for run in runs[:setup])
    user_at = kinds.index("USER")
    assert steps[user_at].words == ("user",) and user_at < kinds.index("COPY") < len(kinds) - 1
    assert [s for s in steps if s.instruction == "COPY"][0].words == ("--chown=user", ".", ".")
    env = _env(steps)
    # /home/user is inside the Space's container (Hugging Face's user 1000 convention), not on this machine
    assert env["HOME"] == "/home/user" and env["PIP_NO_CACHE_DIR"] == "1" and env["EMO_HOST"] == "0.0.0.0"
    assert shlex.split(steps[-1].words[0]) == [".venv/bin/python", "app.py"] and kinds[-1] == "CMD"


def test_space_front_matter_agrees_with_the_dockerfile(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("make_space.sh lists the files git tracks")
    dest = tmp_path / "space"
    subprocess.run(["bash", str(SCRIPTS / "make_space.sh"), str(dest)], check=True, capture_output=True)
    text = (dest / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n", 2)[1])
    steps = _dockerfile()
    exposed = [int(word.split("/")[0]) for s in steps if s.instruction == "EXPOSE" for word in s.words]
    assert front["sdk"] == "docker"
    assert exposed == [front["app_port"]] and int(_env(steps)["EMO_PORT"]) == front["app_port"]
    assert len(front["short_description"]) <= 60  # the Hub's limit
    assert text.split("---\n", 2)[2].lstrip("\n") == (ROOT / "README.md").read_text(encoding="utf-8")
    # the build context holds what the Dockerfile's steps read, and nothing .dockerignore keeps out
    for needed in ("Dockerfile", "scripts/setup.sh", "requirements.txt", "requirements-nodeps.txt", "app.py"):
        assert (dest / needed).is_file(), needed
    assert not (dest / ".venv").exists() and not (dest / "data").exists()


@pytest.mark.parametrize("script", ["check_space_build.sh", "make_space.sh", "setup.sh", "app.sh"])
def test_scripts_are_valid_bash(script):
    result = subprocess.run(["bash", "-n", str(SCRIPTS / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_continued_lines_join_as_docker_joins_them():
    steps = parse("FROM debian:bookworm\n"
                  "RUN echo one \\\n"
                  "    # a comment inside the instruction is dropped\n"
                  "\n"
                  "  && echo two\\\n"
                  "three\n"
                  "# trailing comment\n")
    assert [s.instruction for s in steps] == ["FROM", "RUN"]
    assert steps[1].words == ("echo one " + "  && echo two" + "three",)  # only backslash-newline goes
    assert steps[1].line == 2


def test_exec_form_becomes_one_shell_command_with_the_same_words():
    argv = ["python", "-c", "print('a b')", "$HOME", "x;y"]
    steps = parse("FROM x\nCMD " + json.dumps(argv) + "\nRUN [\"true\"]\n")
    assert shlex.split(steps[1].words[0]) == argv  # /bin/sh -c gets exactly these words back
    assert steps[2].words == ("true",)


def test_env_forms_and_shell_quoting_of_a_step():
    steps = parse('FROM x\nENV A=1 B="two words" C=\nENV LEGACY a value=with spaces\nARG WHO\nARG N=3\n')
    assert steps[1].words == ("A=1", "B=two words", "C=")
    assert steps[2].words == ("LEGACY=a value=with spaces",)
    assert steps[3].words == ("WHO",) and steps[4].words == ("N=3",)
    assert shlex.split(steps[1].shell()) == ["ENV", "A=1", "B=two words", "C="]


@pytest.mark.parametrize("text, message", [
    ("FROM x\nADD https://example.com/f /f\n", "ADD is not replayed"),
    ("FROM x\nWORKDIR $HOME/app\n", "$variable"),
    ("FROM x\nCOPY --chown=$USER . .\n", "$variable"),
    ("FROM x\nRUN <<EOF\necho hi\nEOF\n", "heredoc"),
    ("FROM x AS a\nFROM y\n", "multi-stage"),
    ("RUN true\n", "starts with FROM"),
    ("FROM x\nRUN echo \\\n", "continuation"),
    ("FROM x\nCMD [\"python\", 3]\n", "list of strings"),
    ("FROM x\nCMD [python]\n", "JSON"),
    ("FROM x\nENV 1A=2\n", "not a variable name"),
    ("FROM x\nUSER\n", "no arguments"),
])
def test_what_the_replay_cannot_do_is_refused(text, message):
    with pytest.raises(DockerfileError, match=message.replace("$", r"\$")):
        parse(text)


def test_command_line_prints_nul_terminated_steps_for_the_replay(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPTS / "dockerfile_steps.py"), "--shell", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, check=True)
    records = result.stdout.split("\0")
    assert records[-1] == "" and len(records) - 1 == len(_dockerfile())
    assert records[0] == "FROM python:3.11-slim-bookworm"
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM x\nSHELL [\"bash\", \"-c\"]\n")
    refused = subprocess.run([sys.executable, str(SCRIPTS / "dockerfile_steps.py"), str(bad)], capture_output=True, text=True)
    assert refused.returncode == 1 and "SHELL is not replayed" in refused.stderr and refused.stdout == ""
