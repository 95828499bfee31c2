"""The reason model's faster file: the shipped GGUF with only its token embedding re-quantised to Q4_0.

Gemma 3 270M ties its output layer to its token embedding: a 262,144 x 640 matrix, stored as Q8_0 in
the shipped Q4_K_M file (180 MB of its 253 MB). Each generated token multiplies the whole matrix, which makes
it most of the work of decoding. Measured with llama.cpp 0.3.36 on this machine's two
cores (bare ``llama_decode`` calls in a process holding nothing else), 48-56 tokens/s as shipped,
65-81 tokens/s with the matrix in Q4_0 (95 MB). Every other tensor
is copied unchanged (``derive_variant`` checks this). The cost in quality, measured by
``benchmarks/bench_small_lm.py --quality`` on the five benchmark reason prompts (teacher-forced on the
shipped model's greedy text): mean KL divergence 0.048 nats per token from the shipped model's
next-token distribution, the same top-1 token at 89% of positions, +0.01 nats negative log-likelihood
(Q5_0 is closer, 0.016 / 96%, but only a few tokens/s faster than Q8_0 here).

``llama_model_quantize`` writes the variant in 30-50 s; the install step does it once, next to the
assembled file, with the same lock + temporary name + atomic rename as the assembly.

The Gemma Terms of Use ask that modified files carry a prominent notice that they were modified. The
derived file carries it twice: in its own metadata (``general.description``, added after quantising;
tensor data and tensor records are copied byte for byte) and in a text file beside it,
``<file>.NOTICE.txt``, which also passes on the notice the terms require. The notice is written before
the file is renamed into place, so a derived file without it is unfinished (or from before the notice
existed) and is derived again.

    python -m emo_core.llm.gguf_files            # assembles the shipped file and derives this one
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendError
from .gguf_files import (GEMMA3_270M_Q4KM, GEMMA_NOTICE, LOCK_TIMEOUT_SECONDS, GGUFSpec, ensure_gguf, fsync_dir,
                         gguf_path)

# Name -> ggml type id (ggml.h). "q8_0" is the file as shipped: nothing to derive.
EMBEDDING_TYPES = {"q8_0": 8, "q4_0": 2}
SHIPPED_EMBEDDING = "q8_0"
DEFAULT_EMBEDDING = "q4_0"
EMBEDDING_TENSOR = "token_embd.weight"
_FTYPE_MOSTLY_Q4_K_M = 15  # the shipped file's type; tensors already of the chosen type are copied as they are
NOTICE_KEY = "general.description"  # a standard GGUF key, shown by GGUF viewers and llama.cpp's load log
_GGUF_STRING = 8  # GGUFValueType.STRING


@dataclass(frozen=True)
class VariantReport:
    path: Path
    derived: bool  # False when the variant was already there (or the shipped file was asked for)
    seconds: float


def variant_path(cache_dir: str | Path | None = None, embedding: str = DEFAULT_EMBEDDING,
                 spec: GGUFSpec = GEMMA3_270M_Q4KM) -> Path:
    """Where the file with ``embedding`` is (or will be); the shipped file for ``"q8_0"``."""
    _check_embedding(embedding)
    shipped = gguf_path(cache_dir, spec)
    if embedding == SHIPPED_EMBEDDING:
        return shipped
    return shipped.with_name(f"{shipped.stem}.embd-{embedding}{shipped.suffix}")


def notice_path(variant: str | Path) -> Path:
    """The text file beside a derived file that says how it was modified and under which terms."""
    variant = Path(variant)
    return variant.with_name(variant.name + ".NOTICE.txt")


def modification_notice(shipped_name: str, embedding: str) -> str:
    """What was changed, by whom, and under which terms: the text of the derived file's marking."""
    return (f"Modified by EmoLens from {shipped_name} (Gemma 3 270M): the token embedding ({EMBEDDING_TENSOR}) "
            f"was re-quantised from {SHIPPED_EMBEDDING.upper()} to {embedding.upper()} with llama.cpp's "
            f"llama_model_quantize and the key {NOTICE_KEY} was added; every other tensor is unchanged. "
            f"{GEMMA_NOTICE}")


def ensure_reason_model(cache_dir: str | Path | None = None, embedding: str = DEFAULT_EMBEDDING, *,
                        assemble: bool = True, spec: GGUFSpec = GEMMA3_270M_Q4KM) -> Path:
    """The GGUF the reason writer runs: assembled and derived first if missing (and ``assemble`` allows)."""
    target = variant_path(cache_dir, embedding, spec)
    if target.is_file() and (embedding == SHIPPED_EMBEDDING or notice_path(target).is_file()):
        return target
    shipped = ensure_gguf(cache_dir, spec, assemble=assemble)
    if embedding == SHIPPED_EMBEDDING:
        return shipped
    if not assemble:
        problem = "has no modification notice beside it" if target.is_file() else "is missing"
        raise BackendError(f"the language model file {target} {problem}; create it with "
                           f"`python -m emo_core.llm.gguf_files`" + (f" --cache-dir {cache_dir}" if cache_dir else ""))
    return derive_variant(shipped, embedding).path


def derive_variant(shipped: str | Path, embedding: str = DEFAULT_EMBEDDING, *,
                   lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> VariantReport:
    """Write the variant of ``shipped`` next to it (locked, checked, atomically renamed into place)."""
    from filelock import FileLock, Timeout

    _check_embedding(embedding)
    started = time.perf_counter()
    shipped = Path(shipped)
    target = shipped.with_name(f"{shipped.stem}.embd-{embedding}{shipped.suffix}")
    if embedding == SHIPPED_EMBEDDING:
        return VariantReport(shipped, False, 0.0)
    try:
        with FileLock(str(target) + ".lock", timeout=lock_timeout):
            if target.is_file() and notice_path(target).is_file():  # whoever held the lock before us wrote it
                return VariantReport(target, False, time.perf_counter() - started)
            for leftover in target.parent.glob(f".{target.name}.*.partial"):
                leftover.unlink(missing_ok=True)
            _quantize_checked(shipped, target, embedding)
    except Timeout:
        raise BackendError(f"waited {lock_timeout:.0f} s for another process writing {target}; "
                           f"if none is running, delete {target}.lock") from None
    return VariantReport(target, True, time.perf_counter() - started)


def _quantize_checked(shipped: Path, target: Path, embedding: str) -> None:
    try:
        import llama_cpp
    except ImportError as exc:
        raise BackendError("deriving the language model file needs llama-cpp-python==0.3.36") from exc
    temp, marked = (_partial_name(target) for _ in range(2))
    try:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = _FTYPE_MOSTLY_Q4_K_M
        params.allow_requantize = True
        params.token_embedding_type = EMBEDDING_TYPES[embedding]
        params.nthread = 0  # llama.cpp's choice: every core
        with _captured_stderr() as log:  # llama.cpp prints a line per tensor
            status = llama_cpp.llama_model_quantize(str(shipped).encode(), str(temp).encode(), ctypes.byref(params))
        if status != 0:
            raise BackendError(f"llama.cpp could not re-quantise {shipped.name} (status {status}): "
                               f"{log.tail()}")
        notice = modification_notice(shipped.name, embedding)
        _copy_with_string_key(temp, marked, NOTICE_KEY, notice)
        temp.unlink()
        _check_only_embedding_changed(shipped, marked, embedding)
        _write_notice_file(notice_path(target), target.name, notice)
        os.chmod(marked, 0o644)
        os.replace(marked, target)
        fsync_dir(target.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        marked.unlink(missing_ok=True)
        raise


def _partial_name(target: Path) -> Path:
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(handle)
    return Path(name)


def _copy_with_string_key(source: Path, target: Path, key: str, value: str) -> None:
    """Copy a GGUF file, adding one string key to its metadata. The tensor records and tensor data are
    copied byte for byte: their offsets count from the start of the (aligned) data section, which moves
    as a whole."""
    from gguf import GGUFReader

    reader = GGUFReader(str(source))
    if key in reader.fields:
        raise BackendError(f"{source.name} already has the key {key}")
    if reader.endianess.name != sys.byteorder.upper():
        raise BackendError(f"{source.name} is not in this machine's byte order")
    records_start = min(t.field.offset for t in reader.tensors)
    records_end = max(t.field.offset + sum(int(part.nbytes) for part in t.field.parts) for t in reader.tensors)
    alignment, data_start = int(reader.alignment), int(reader.data_offset)
    kv_count = int(reader.fields["GGUF.kv_count"].parts[0][0])
    del reader  # its memory map of the file
    encoded_key, encoded_value = key.encode("utf-8"), value.encode("utf-8")
    entry = (struct.pack("=Q", len(encoded_key)) + encoded_key + struct.pack("=I", _GGUF_STRING)
             + struct.pack("=Q", len(encoded_value)) + encoded_value)
    with source.open("rb") as src, target.open("wb") as out:
        head = src.read(records_start)  # magic, version, tensor count, key count, then the keys
        out.write(head[:16] + struct.pack("=Q", kv_count + 1) + head[24:] + entry)
        out.write(src.read(records_end - records_start))
        out.write(b"\0" * (-out.tell() % alignment))
        src.seek(data_start)
        shutil.copyfileobj(src, out, 4 * 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())


def _write_notice_file(path: Path, variant_name: str, notice: str) -> None:
    text = (f"{variant_name}\n\n{notice}\n\nA copy of the Gemma Terms of Use ships in the package "
            f"{GEMMA3_270M_Q4KM.pip_name} (data/GEMMA_TERMS.html). Section 3.2 of the terms restricts use: "
            f"see the Gemma Prohibited Use Policy at ai.google.dev/gemma/prohibited_use_policy.\n")
    partial = _partial_name(path)
    try:
        partial.write_text(text, encoding="utf-8")
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _check_only_embedding_changed(shipped: Path, derived: Path, embedding: str) -> None:
    from gguf import GGUFReader

    before = {t.name: (t.tensor_type.name, tuple(t.shape)) for t in GGUFReader(str(shipped)).tensors}
    after = {t.name: (t.tensor_type.name, tuple(t.shape)) for t in GGUFReader(str(derived)).tensors}
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if changed != [EMBEDDING_TENSOR] or after[EMBEDDING_TENSOR][0] != embedding.upper():
        raise BackendError(f"re-quantising {shipped.name} changed {changed or 'nothing'}, expected only "
                           f"{EMBEDDING_TENSOR} -> {embedding.upper()}")


class _captured_stderr:
    """Sends file descriptor 2 and ``sys.stderr`` (where llama-cpp-python's log callback prints) to a
    temporary file for the duration; ``tail()`` gives its last lines, for error messages."""

    def __enter__(self) -> "_captured_stderr":
        self._file = tempfile.TemporaryFile()
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._saved_stream = sys.stderr
        os.dup2(self._file.fileno(), 2)
        sys.stderr = open(self._file.fileno(), "w", closefd=False)
        return self

    def __exit__(self, *exc_info) -> None:
        sys.stderr.close()
        sys.stderr = self._saved_stream
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self._text = self._file.read().decode("utf-8", "replace")
        self._file.close()

    def tail(self, lines: int = 3) -> str:
        return " | ".join(self._text.strip().splitlines()[-lines:]) or "no message"


def _check_embedding(embedding: str) -> None:
    if embedding not in EMBEDDING_TYPES:
        raise ValueError(f"unknown embedding type {embedding!r}: choose {', '.join(EMBEDDING_TYPES)}")
