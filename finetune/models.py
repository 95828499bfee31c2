"""Loading the model for a recipe, choosing what trains, and writing the final model.

- ``emovit`` (InstructBLIP): everything frozen except the Q-Former, its query tokens and the language
  projection (EmoVIT's Q-Former-only tuning; the vision encoder and the LLM stay bit-identical).
- ``llava_lora`` (LLaVA): LoRA adapters (peft) on the language model's linear layers; the vision tower,
  the projector (unless ``train_projector``) and every base weight stay frozen.

The recipe checks the checkpoint's ``model_type`` before loading any weights, so pointing a recipe at
another kind of model fails at once. Quantisation (bitsandbytes) applies to the language model only: the
vision encoder, Q-Former/projector and the output head stay in the training precision.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import FinetuneError
from .config import FinetuneConfig

MODEL_TYPES = {"emovit": ("instructblip",), "llava_lora": ("llava",), "emotion_llama": ("emotion_llama",)}
OTHER_RECIPE = {"instructblip": "finetune.emovit", "llava": "finetune.llava_lora",
                "emotion_llama": "finetune.emotion_llama train"}
# modules kept out of bitsandbytes' conversion (substring match on module names)
NOT_QUANTIZED = {"emovit": ["vision_model", "qformer", "language_projection", "lm_head"],
                 "llava_lora": ["vision_tower", "multi_modal_projector", "lm_head"],
                 "emotion_llama": ["audio_encoder", "global_encoder", "local_encoder", "temporal_encoder",
                                   "_projection", "lm_head"]}
EMOTION_LLAMA_TRAINED = ("audio_projection.", "global_projection.", "local_projection.", "temporal_projection.")
QFORMER_PARTS = ("qformer.", "query_tokens", "language_projection.")
LLAVA_LM = r"model\.language_model\..*\.({targets})"


@dataclass
class Prepared:
    model: object  # what trains (a PeftModel for LoRA)
    processor: object
    family: object  # emo_core.backends.hf_families.Family
    model_type: str
    encoder_decoder: bool
    load_dtype: object


def check_model_type(config: FinetuneConfig):
    """The checkpoint's transformers config, after checking the recipe can train it."""
    from emo_core.backends.hf_loading import load_config
    from emo_core.errors import BackendError

    try:
        hf_config = load_config(config.model, local_files_only=Path(config.model).is_dir())
    except BackendError as exc:
        raise FinetuneError(str(exc)) from None
    wanted = MODEL_TYPES[config.recipe]
    if hf_config.model_type not in wanted:
        hint = f"; use python -m {OTHER_RECIPE[hf_config.model_type]}" if hf_config.model_type in OTHER_RECIPE else ""
        raise FinetuneError(f"python -m finetune.{config.recipe} trains {' or '.join(wanted)} models; "
                            f"{Path(config.model).name or config.model} is a {hf_config.model_type!r} model{hint}")
    return hf_config


def unreachable_qformer_parts(hf_config) -> tuple[str, ...]:
    """The Q-Former's last text feed-forward block: only the query tokens' outputs reach the LLM, so the
    instruction tokens' last feed-forward layer gets no gradient. It stays frozen (and bit-identical)
    rather than drifting under weight decay, and DDP needs no search for unused parameters."""
    last = hf_config.qformer_config.num_hidden_layers - 1
    return (f"qformer.encoder.layer.{last}.intermediate.", f"qformer.encoder.layer.{last}.output.")


def load_dtype(mixed_precision: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision, torch.float32)


def quantization_config(config: FinetuneConfig, dtype, distributed: str):
    """bitsandbytes settings for the language model, refusing the combinations known not to work."""
    from transformers import BitsAndBytesConfig

    quantization = config.run.quantization
    if quantization == "none":
        return None
    if distributed == "DEEPSPEED_ZERO3" and quantization == "4bit":
        raise FinetuneError("4-bit quantisation does not work under DeepSpeed ZeRO-3 (ZeRO-3 partitions the packed "
                            "4-bit weights); use ZeRO-2, DDP, or FSDP with 4-bit")
    if distributed == "FSDP" and quantization == "8bit":
        raise FinetuneError("8-bit weights cannot be sharded by FSDP; use 4-bit (QLoRA-style) with FSDP, or DDP")
    skip = NOT_QUANTIZED[config.recipe]
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    # FSDP flattens parameters of one dtype: the packed 4-bit weights must be stored in the training dtype.
    storage = {"bnb_4bit_quant_storage": dtype} if distributed == "FSDP" else {}
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype, llm_int8_skip_modules=skip, **storage)


def load(config: FinetuneConfig, mixed_precision: str, device_index: int | None, distributed: str = "NO") -> Prepared:
    import torch
    import transformers

    from emo_core.backends.hf_families import family_for
    from emo_core.backends.hf_loading import load_processor

    hf_config = check_model_type(config)
    dtype = load_dtype(mixed_precision)
    local = Path(config.model).is_dir()
    kwargs = {"dtype": dtype, "local_files_only": local}
    quantization = quantization_config(config, dtype, distributed)
    if quantization is not None:
        from emo_core.backends.hf_loading import check_quantization
        from emo_core.errors import BackendError

        try:
            check_quantization(config.run.quantization, "cuda" if device_index is not None else "cpu")
        except BackendError as exc:
            raise FinetuneError(str(exc)) from None
        kwargs["quantization_config"] = quantization
        # bitsandbytes weights cannot be moved after loading: place them on this process's device now
        kwargs["device_map"] = {"": device_index if device_index is not None else "cpu"}
    model_class = getattr(transformers, {"instructblip": "InstructBlipForConditionalGeneration",
                                         "llava": "LlavaForConditionalGeneration",
                                         "emotion_llama": "AutoModelForImageTextToText"}[hf_config.model_type])
    try:
        model = model_class.from_pretrained(config.model, **kwargs)
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        raise FinetuneError(f"cannot load {Path(config.model).name or config.model}: {exc}") from None
    try:
        processor = load_processor(config.model, hf_config.model_type, local)
    except Exception as exc:
        raise FinetuneError(str(exc)) from None
    encoder_decoder = not getattr(hf_config, "use_decoder_only_language_model", True)

    if config.recipe == "emovit":
        dead = unreachable_qformer_parts(hf_config)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith(QFORMER_PARTS) and not name.startswith(dead))
    elif config.recipe == "emotion_llama":
        # the projections and the LoRA adapters (already in the checkpoint) train; encoders and LLM stay frozen
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith(EMOTION_LLAMA_TRAINED) or ".lora_" in name)
    else:
        model = _with_lora(model, config, quantized=quantization is not None)
    # the trained weights in fp32 (the optimiser's master copy); frozen ones stay in the load dtype
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
    if config.run.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    model.train()
    return Prepared(model, processor, family_for(hf_config.model_type), hf_config.model_type, encoder_decoder, dtype)


def lora_config(config: FinetuneConfig):
    from peft import LoraConfig

    targets = "|".join(config.lora.lora_targets)
    return LoraConfig(r=config.lora.lora_r, lora_alpha=config.lora.lora_alpha, lora_dropout=config.lora.lora_dropout,
                      target_modules=LLAVA_LM.format(targets=targets), bias="none",
                      modules_to_save=["multi_modal_projector"] if config.lora.train_projector else None)


def _with_lora(model, config: FinetuneConfig, quantized: bool):
    from peft import get_peft_model, prepare_model_for_kbit_training

    for parameter in model.parameters():
        parameter.requires_grad_(False)
    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.run.gradient_checkpointing)
    peft_model = get_peft_model(model, lora_config(config))
    if not any(p.requires_grad for p in peft_model.parameters()):
        raise FinetuneError(f"no LoRA target among the language model's layers: {', '.join(config.lora.lora_targets)}")
    return peft_model


def trainable_state(model) -> dict:
    """The trained tensors by name (as ``state_dict`` names them), on the CPU."""
    names = {name for name, p in model.named_parameters() if p.requires_grad}
    return {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items() if name in names}


def save_trained(model, processor, config: FinetuneConfig, directory: Path, state_dict: dict | None = None) -> None:
    """A checkpoint in the transformers format: the whole model (emovit) or the LoRA adapter (llava_lora),
    plus the processor, so that ``from_pretrained`` / ``PeftModel.from_pretrained`` read it."""
    directory.mkdir(parents=True, exist_ok=True)
    if config.recipe == "llava_lora":
        model.save_pretrained(directory, state_dict=state_dict)
        _relative_base(directory, config.model)
    elif getattr(model, "is_quantized", False):
        _write_full_model(config, model, directory)
    else:
        model.save_pretrained(directory, state_dict=state_dict)
    processor.save_pretrained(directory)


def _relative_base(directory: Path, source: str) -> None:
    """adapter_config.json names the base as given on the command line (no machine-specific absolute path)."""
    import json

    path = directory / "adapter_config.json"
    values = json.loads(path.read_text(encoding="utf-8"))
    values["base_model_name_or_path"] = source
    path.write_text(json.dumps(values, indent=2), encoding="utf-8")


def _write_full_model(config: FinetuneConfig, model, directory: Path) -> None:
    """A quantised run's model saved unquantised: the base reloaded in its own dtype on the CPU with the
    trained tensors put in, so the frozen weights are the base's bit for bit (a 4/8-bit file would need
    bitsandbytes to load, and would hold the rounded weights)."""
    trained = trainable_state(model)
    base = type(model).from_pretrained(config.model, dtype="auto", local_files_only=Path(config.model).is_dir())
    missing = set(trained) - set(base.state_dict())
    if missing:
        raise FinetuneError(f"trained tensors missing from the base model: {sorted(missing)[:3]}")
    base.load_state_dict(trained, strict=False)
    base.save_pretrained(directory)


def merge_adapter(config: FinetuneConfig, adapter_dir: Path, processor, directory: Path, dtype) -> None:
    """Base (reloaded unquantised on the CPU) + adapter, merged and saved as a plain model."""
    import transformers
    from peft import PeftModel

    base = transformers.LlavaForConditionalGeneration.from_pretrained(
        config.model, dtype=dtype, local_files_only=Path(config.model).is_dir())
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    staging = Path(tempfile.mkdtemp(prefix="merge-", dir=directory.parent))
    merged.save_pretrained(staging)
    processor.save_pretrained(staging)
    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)
