"""Reads the project's Dockerfile into its build steps, so a build can be replayed without Docker.

``scripts/check_space_build.sh`` replays these steps in a chroot; the tests check the file parses and
agrees with the Space front matter. Only the instructions this project uses are understood; anything
else (ADD, SHELL, heredocs, ``$VAR`` outside RUN/CMD, ...) is refused with a message rather than
replayed approximately, so the replay cannot silently drift from what Docker would do.

    python3 scripts/dockerfile_steps.py Dockerfile          # one step a line, for reading
    python3 scripts/dockerfile_steps.py --shell Dockerfile  # NUL-terminated shell-quoted steps (the replay)

Each step is an instruction and its words: RUN and CMD carry one ``/bin/sh -c`` command (exec form
is quoted into one), ENV and ARG one ``KEY=VALUE`` word per variable, the others their split words.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

SUPPORTED = ("FROM", "RUN", "COPY", "USER", "WORKDIR", "ENV", "ARG", "EXPOSE", "CMD", "LABEL")
# Where Docker would substitute ``$VAR`` itself; the replay does not, so such steps are refused.
NO_SUBSTITUTION = ("FROM", "COPY", "USER", "WORKDIR", "ENV", "EXPOSE")


class DockerfileError(ValueError):
    """The Dockerfile uses something the replay does not understand."""


@dataclass(frozen=True)
class Step:
    instruction: str
    words: tuple[str, ...]
    line: int  # where the instruction starts (1-based)

    def shell(self) -> str:
        """The step as one shell-quoted line: ``INSTRUCTION 'word' 'word'``."""
        return " ".join([self.instruction, *(shlex.quote(word) for word in self.words)])


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Joins ``\\``-continued lines and drops comments and blank lines, as Docker does."""
    joined: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # blank and comment lines are dropped, also inside a continued instruction
        if not current:
            start = number
        if raw.rstrip().endswith("\\"):
            current.append(raw.rstrip()[:-1])  # Docker removes the backslash and the newline, nothing else
            continue
        current.append(raw)
        joined.append((start, "".join(current).strip()))
        current = []
    if current:
        raise DockerfileError(f"line {start}: the last instruction ends with a line continuation")
    return joined


def _command(instruction: str, rest: str, line: int) -> tuple[str, ...]:
    if rest.startswith("["):
        try:
            argv = json.loads(rest)
        except json.JSONDecodeError as error:
            raise DockerfileError(f"line {line}: {instruction} exec form is not a JSON list: {error}") from None
        if not argv or not all(isinstance(word, str) for word in argv):
            raise DockerfileError(f"line {line}: {instruction} exec form must be a list of strings")
        return (shlex.join(argv),)
    if "<<" in rest:
        raise DockerfileError(f"line {line}: heredocs are not replayed; write the commands inline")
    return (rest,)


def _variables(instruction: str, rest: str, line: int) -> tuple[str, ...]:
    words = shlex.split(rest)
    if instruction == "ENV" and words and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        key, _, value = rest.partition(" ")
        return (f"{key}={value.strip()}",)
    for word in words:
        key = word.partition("=")[0]
        if instruction == "ENV" and "=" not in word:
            raise DockerfileError(f"line {line}: ENV {word!r} has no value")
        if not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise DockerfileError(f"line {line}: {key!r} is not a variable name")
    return tuple(words)


def parse(text: str) -> list[Step]:
    """The steps of a Dockerfile, in order; raises DockerfileError on anything not replayable."""
    steps = []
    for line, content in logical_lines(text):
        instruction, _, rest = content.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction not in SUPPORTED:
            raise DockerfileError(f"line {line}: {instruction} is not replayed (supported: {', '.join(SUPPORTED)})")
        if instruction in NO_SUBSTITUTION and "$" in rest:
            raise DockerfileError(f"line {line}: {instruction} uses a $variable, which the replay does not expand")
        if instruction in ("RUN", "CMD"):
            words = _command(instruction, rest, line)
        elif instruction in ("ENV", "ARG"):
            words = _variables(instruction, rest, line)
        else:
            words = tuple(shlex.split(rest))
        if not words and instruction != "LABEL":
            raise DockerfileError(f"line {line}: {instruction} has no arguments")
        steps.append(Step(instruction, words, line))
    if not steps or steps[0].instruction not in ("FROM", "ARG"):
        raise DockerfileError("a Dockerfile starts with FROM")
    if sum(step.instruction == "FROM" for step in steps) != 1:
        raise DockerfileError("multi-stage builds (several FROM) are not replayed")
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dockerfile", type=Path)
    parser.add_argument("--shell", action="store_true", help="NUL-terminated shell-quoted steps")
    args = parser.parse_args(argv)
    try:
        steps = parse(args.dockerfile.read_text(encoding="utf-8"))
    except DockerfileError as error:
        print(f"{args.dockerfile}: {error}", file=sys.stderr)
        return 1
    for step in steps:
        sys.stdout.write(step.shell() + ("\0" if args.shell else "\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
