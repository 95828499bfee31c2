"""Loading for the transformers backend: placement, dtype, quantisation, processor, and a per-process cache.

Everything a user can choose is a setting (``EMO_DEVICE``, ``EMO_DTYPE``, ``EMO_QUANTIZATION``,
``EMO_MAX_MEMORY``), turned here into ``from_pretrained`` arguments:

- placement: ``auto`` lets accelerate spread the model over the GPUs then the CPU (``device_map="auto"``,
  bounded by ``max_memory``); without a GPU the model goes to the CPU;
- dtype: ``auto`` is bf16 on a GPU that has it, else fp16 on a GPU, and fp32 on a CPU;
- quantisation: 8-bit or 4-bit (NF4, double quantisation) with bitsandbytes.

A loaded model is kept once per process per (model, placement, dtype, quantisation): ``acquire`` loads
or reuses it, ``release`` drops it and frees the memory.
"""

from __future__ import annotations

import gc
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BackendError
from ..settings import Settings
from .hf_families import Family, family_for


@dataclass(frozen=True)
class LoadOptions:
    """The part of the settings that decides how a model is loaded (and so keys the cache)."""

    source: str
    device: str = "auto"
    dtype: str = "auto"
    quantization: str = "none"
    max_memory: str = ""
    local_files_only: bool = False  # the hub is not to be asked (settings.hub_access)

    @classmethod
    def from_settings(cls, settings: Settings) -> "LoadOptions":
        if not settings.model:
            raise BackendError("the hf backend needs a model: set EMO_MODEL (or --model) to a hub id or a local "
                               "directory")
        from ..model_choice import hub_offline

        return cls(settings.model, settings.device, settings.dtype, settings.quantization, settings.max_memory,
                   hub_offline(settings))


@dataclass(frozen=True)
class Placement:
    device_map: object  # "auto" or {"": "cpu"} / {"": "mps"}
    dtype: object  # torch.dtype
    max_memory: dict | None
    on_accelerator: bool


@dataclass
class LoadedModel:
    options: LoadOptions
    family: Family
    model: object  # the whole checkpoint (what from_pretrained returned)
    text_model: object  # the sub-module that writes text (the model itself, or Qwen-Omni's thinker)
    processor: object
    placement: Placement
    # One request at a time per model: generation state (seeds, streamers) is global to the model.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def continuation_model(self):
        """What continues from the prompt's key/value cache without the media (see hf_scoring)."""
        module = self.family.continuation_module
        return getattr(self.text_model, module) if module else self.text_model

    @property
    def is_encoder_decoder(self) -> bool:
        return bool(getattr(self.text_model.config.get_text_config(), "is_encoder_decoder", False))


_CACHE: dict[LoadOptions, LoadedModel] = {}
_CACHE_LOCK = threading.Lock()
_LOADING: dict[LoadOptions, threading.Lock] = {}  # one lock per model being loaded


def acquire(options: LoadOptions) -> LoadedModel:
    """The loaded model for these options, loading it on first use.

    Only requests for the same model wait for its load; a model that is already loaded stays usable
    by other requests meanwhile.
    """
    with _CACHE_LOCK:
        if options in _CACHE:
            return _CACHE[options]
        loading = _LOADING.setdefault(options, threading.Lock())
    with loading:
        with _CACHE_LOCK:
            if options in _CACHE:
                return _CACHE[options]
        try:
            loaded = _load(options)
        finally:
            with _CACHE_LOCK:
                _LOADING.pop(options, None)
        with _CACHE_LOCK:
            _CACHE[options] = loaded
        return loaded


def release(options: LoadOptions) -> bool:
    """Drop the model from the cache and free its memory; False if it was not loaded."""
    with _CACHE_LOCK:
        loaded = _CACHE.pop(options, None)
    if loaded is None:
        return False
    with loaded.lock:  # let a running request finish first
        loaded.model = loaded.text_model = loaded.processor = None
    del loaded
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return True


def loaded_options() -> list[LoadOptions]:
    with _CACHE_LOCK:
        return list(_CACHE)


# ------------------------------------------------------------------------------------------------
# settings -> from_pretrained arguments


def parse_max_memory(text: str) -> dict | None:
    """``"0:10GiB,cpu:30GiB"`` -> ``{0: "10GiB", "cpu": "30GiB"}`` (accelerate's format)."""
    if not text.strip():
        return None
    limits = {}
    for item in text.split(","):
        key, sep, amount = item.strip().partition(":")
        key, amount = key.strip(), amount.strip()
        if not sep or not key or not amount:
            raise BackendError(f"max_memory entry {item.strip()!r} is not 'device:amount' (e.g. '0:10GiB,cpu:30GiB')")
        limits[int(key) if key.isdigit() else key] = amount
    return limits


def resolve_placement(options: LoadOptions, cuda_available: bool, mps_available: bool,
                      bf16_supported: bool) -> Placement:
    """Where and in which dtype the weights go. Pure: the hardware facts are arguments (testable)."""
    import torch

    device = options.device
    if device == "auto":
        device = "cuda" if cuda_available else "mps" if mps_available else "cpu"
    if device == "cuda" and not cuda_available:
        raise BackendError("device 'cuda' was asked for, but torch sees no CUDA GPU here; use EMO_DEVICE=auto or cpu")
    if device == "mps" and not mps_available:
        raise BackendError("device 'mps' was asked for, but torch sees no Apple GPU here; use EMO_DEVICE=auto or cpu")
    if device not in ("cuda", "mps", "cpu"):
        raise BackendError(f"unknown device {options.device!r}: choose auto, cpu, cuda or mps")

    max_memory = parse_max_memory(options.max_memory)
    if device == "cuda":
        device_map = "auto"  # accelerate fills the GPUs in order, then the CPU, within max_memory
    else:
        if max_memory:
            raise BackendError(f"max_memory only bounds accelerate's spread over GPUs; it has no effect on {device}: "
                               "leave EMO_MAX_MEMORY empty")
        device_map = {"": device}

    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if options.dtype != "auto":
        dtype = names[options.dtype]
    elif device == "cuda":
        dtype = torch.bfloat16 if bf16_supported else torch.float16
    elif device == "mps":
        dtype = torch.float16
    else:
        dtype = torch.float32  # CPU kernels for half precision are slow or missing

    if options.quantization != "none":
        check_quantization(options.quantization, device)
    return Placement(device_map, dtype, max_memory, device != "cpu")


def check_quantization(quantization: str, device: str) -> None:
    """Refuse, with the reason, the quantised loads that cannot work here."""
    if device == "mps":
        raise BackendError(f"{quantization} loading uses bitsandbytes, which has no Apple-GPU (mps) kernels; "
                           "use EMO_QUANTIZATION=none or a CUDA GPU")
    version = bitsandbytes_version()
    if version is None:
        raise BackendError(f"{quantization} loading needs the bitsandbytes package (pip install bitsandbytes)")
    if device == "cpu" and _version_tuple(version) < (0, 45):
        raise BackendError(f"bitsandbytes {version} has no CPU kernels; {quantization} loading on a CPU needs "
                           "bitsandbytes >= 0.45 (or run on a CUDA GPU)")


def bitsandbytes_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("bitsandbytes")
    except metadata.PackageNotFoundError:
        return None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(piece) for piece in version.split(".")[:2] if piece.isdigit())


def quantization_config(quantization: str, compute_dtype):
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


# ------------------------------------------------------------------------------------------------
# loading


def _load(options: LoadOptions) -> LoadedModel:
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    # Native bf16 only (Ampere and later): torch would report emulated bf16 on a T4, which is slow.
    placement = resolve_placement(options, cuda, torch.backends.mps.is_available(),
                                  cuda and torch.cuda.is_bf16_supported(including_emulation=False))
    config = load_config(options.source, options.local_files_only)
    family = family_for(config.model_type)
    model_class = (getattr(transformers, family.model_class) if family.model_class
                   else transformers.AutoModelForImageTextToText)
    kwargs = dict(family.load_kwargs, dtype=placement.dtype, device_map=placement.device_map,
                  local_files_only=options.local_files_only)
    if placement.max_memory:
        kwargs["max_memory"] = placement.max_memory
    if options.quantization != "none":
        kwargs["quantization_config"] = quantization_config(options.quantization, placement.dtype)
    try:
        model = model_class.from_pretrained(options.source, **kwargs).eval()
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        what = f" with {options.quantization} quantisation" if options.quantization != "none" else ""
        raise BackendError(f"cannot load the model {options.source!r}{what}: {exc}") from exc
    processor = load_processor(options.source, config.model_type, options.local_files_only)
    text_model = getattr(model, family.text_module) if family.text_module else model
    return LoadedModel(options, family, model, text_model, processor, placement)


def load_config(source: str, local_files_only: bool = False):
    from transformers import AutoConfig

    from ..models.emotion_llama import register

    register()  # the project's own model type, which transformers does not know by itself

    try:
        return AutoConfig.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError) as exc:
        hint = "" if Path(source).is_dir() else (
            " (hub access is off, so a hub id needs a copy in the local hub cache; see EMO_HUB_ACCESS)"
            if local_files_only else " (a hub id needs the hub, or a copy in the local hub cache)")
        raise BackendError(f"cannot read the configuration of {source!r}{hint}: {exc}") from exc


def load_processor(source: str, model_type: str, local_files_only: bool = False):
    """The checkpoint's processor; without torchvision, the same processor minus its video processor."""
    from transformers import AutoProcessor
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES
    from transformers.utils import is_torchvision_available

    if model_type == "emotion_llama":
        from ..models.emotion_llama.processing import EmotionLlamaProcessor

        try:
            return EmotionLlamaProcessor.from_pretrained(source, local_files_only=local_files_only)
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot load the processor of {source!r}: {exc}") from exc
    processor_class = _processor_class(source, PROCESSOR_MAPPING_NAMES.get(model_type))
    try:
        if processor_class is not None and "video_processor" in processor_class.get_attributes() \
                and not is_torchvision_available():
            return _processor_without_video(processor_class, source, local_files_only)
        return AutoProcessor.from_pretrained(source, local_files_only=local_files_only)
    except ImportError as exc:  # e.g. SmolVLM2's processor needs the num2words package
        raise BackendError(f"the processor of {source!r} needs a package that is missing here: {exc}") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise BackendError(f"cannot load the processor of {source!r}: {exc}") from exc


def _processor_class(source: str, default_name: str | None):
    import transformers

    name = default_name
    config_file = Path(source) / "processor_config.json"
    if config_file.is_file():
        name = json.loads(config_file.read_text(encoding="utf-8")).get("processor_class", name)
    return getattr(transformers, name, None) if name else None


def _processor_without_video(processor_class, source: str, local_files_only: bool = False):
    """The processor built from its parts with no video processor (transformers' need torchvision).

    Videos reach these models as frames shown as images (``hf_media``), so nothing is lost but the
    model's own video path. The subclass only relaxes the constructor's type check for that one part.
    """
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoTokenizer

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor" and argument is None:
            return None
        return processor_class.check_argument_for_proper_class(self, argument_name, argument)

    without_video = type(processor_class.__name__, (processor_class,),
                         {"check_argument_for_proper_class": check_argument_for_proper_class})
    processor_dict, _ = processor_class.get_processor_dict(source, local_files_only=local_files_only)
    hub = {"local_files_only": local_files_only}
    parts = []
    for attribute in processor_class.get_attributes():
        if attribute == "video_processor":
            parts.append(None)
        elif attribute == "tokenizer":
            parts.append(AutoTokenizer.from_pretrained(source, **hub))
        elif "tokenizer" in attribute:
            parts.append(AutoTokenizer.from_pretrained(source, subfolder=attribute, **hub))
        elif attribute == "image_processor":
            parts.append(AutoImageProcessor.from_pretrained(source, **hub))
        elif attribute == "feature_extractor":
            parts.append(AutoFeatureExtractor.from_pretrained(source, **hub))
        else:
            raise BackendError(f"{processor_class.__name__} has a part ({attribute}) the hf backend cannot load "
                               "without torchvision")
    return without_video.from_args_and_dict(parts, processor_dict)
