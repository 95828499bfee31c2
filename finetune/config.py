"""The run's configuration: documented dataclasses, validated on load; YAML mirrors them; flags override.

Order of precedence: the dataclass defaults (InstructBLIP's, see below) < the recipe's defaults (LLaVA's
LoRA script for ``llava_lora``) < ``--config FILE.yaml`` < command-line flags. A YAML file has the four
sections ``data``, ``optim``, ``run`` and ``lora`` plus the top-level ``model``; a key that no dataclass
has is an error (a typo must not silently train with the default). Every field is also a flag:
``--learning-rate 1e-5``, ``--types categorical,conversation``, ``--gradient-checkpointing`` /
``--no-gradient-checkpointing``.

Where the defaults come from. EmoVIT says it trains with InstructBLIP's default hyper-parameters; the
InstructBLIP paper (Dai et al., 2023, Sec. 3.5 / appendix) gives AdamW (beta 0.9 / 0.999, weight decay
0.05), a linear warm-up over 1,000 steps to a peak of 1e-5, then cosine decay to 0, batch 128 for
Vicuna-7B, images at 224 px, at most 60k steps. EmoVIT's two public training configs disagree with each
other (initial learning rate 1e-5 in one, 8e-6 in the other; warm-up 30,000 steps in one, 1,000 in the
other); we keep the paper's rule (InstructBLIP's defaults: 1e-5 and 1,000) and every value is a flag.
The LLaVA recipe starts from LLaVA-1.5's LoRA script (r 128, alpha 256, learning rate 2e-4, warm-up
ratio 0.03, no weight decay, cosine).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import FinetuneError

TYPES = ("categorical", "conversation", "reasoning")
PRECISIONS = ("auto", "bf16", "fp16", "no")
QUANTIZATIONS = ("none", "8bit", "4bit")
SCHEDULERS = ("cosine", "linear", "constant_with_warmup")


@dataclass
class DataConfig:
    """What to train on."""
    data: str = ""  # training file: the generator's export (LLaVA JSON or instructblip), or EmoVIT's all.json
    image_folder: str = ""  # folder the records' "image" paths are relative to
    val_data: str = ""  # held-out file in any of the same formats (e.g. the export's <stem>_val.json); empty: no evaluation
    types: list[str] = field(default_factory=lambda: list(TYPES))  # sample types to keep (Table 2 ablation)
    fraction: float = 1.0  # share of the training samples to keep, chosen by a seeded hash (Table 4)
    class_set: str = "mikels8"  # labels the held-out categorical answers are parsed against
    max_length: int = 512  # tokens per example (prompt + answer); longer answers are cut at the end
    qformer_max_length: int = 128  # InstructBLIP: instruction tokens the Q-Former reads (LAVIS max_txt_len)
    eval_samples: int = 200  # held-out categorical questions generated per evaluation (0: loss only)
    num_workers: int = 0  # data-loader worker processes

    def __post_init__(self):
        unknown = [t for t in self.types if t not in TYPES]
        if unknown or not self.types:
            raise FinetuneError(f"types must be some of {', '.join(TYPES)}; got {', '.join(self.types) or 'none'}")
        if not 0.0 < self.fraction <= 1.0:
            raise FinetuneError(f"fraction must be above 0 and at most 1, got {self.fraction}")
        for name in ("max_length", "qformer_max_length"):
            if getattr(self, name) < 8:
                raise FinetuneError(f"{name} must be at least 8")
        if self.eval_samples < 0 or self.num_workers < 0:
            raise FinetuneError("eval_samples and num_workers cannot be negative")
        from emo_core.labels import resolve_class_set

        try:
            resolve_class_set(self.class_set)
        except Exception as exc:
            raise FinetuneError(f"class_set: {exc}") from None


@dataclass
class OptimConfig:
    """The optimiser and schedule (InstructBLIP's defaults)."""
    learning_rate: float = 1e-5  # peak; EmoVIT's public configs: 1e-5 and 8e-6
    weight_decay: float = 0.05
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    warmup_steps: int = 1000  # EmoVIT's public configs: 30,000 and 1,000
    warmup_ratio: float = 0.0  # share of max_steps; used instead of warmup_steps when above 0
    scheduler: str = "cosine"
    max_steps: int = 60000  # optimiser steps (InstructBLIP's maximum); the run stops here
    batch_size: int = 4  # examples per device per micro-batch
    gradient_accumulation: int = 1  # micro-batches per optimiser step
    max_grad_norm: float = 1.0  # 0: no clipping

    def __post_init__(self):
        if self.learning_rate <= 0 or self.max_steps < 1 or self.batch_size < 1 or self.gradient_accumulation < 1:
            raise FinetuneError("learning_rate must be above 0; max_steps, batch_size and gradient_accumulation at least 1")
        if self.warmup_steps < 0 or not 0.0 <= self.warmup_ratio < 1.0:
            raise FinetuneError("warmup_steps cannot be negative and warmup_ratio must be in [0, 1)")
        if self.scheduler not in SCHEDULERS:
            raise FinetuneError(f"scheduler must be one of {', '.join(SCHEDULERS)}")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise FinetuneError("weight_decay and max_grad_norm cannot be negative")

    def warmup(self) -> int:
        return round(self.warmup_ratio * self.max_steps) if self.warmup_ratio > 0 else min(self.warmup_steps, self.max_steps)


@dataclass
class RunConfig:
    """How the run executes, saves and reports."""
    output_dir: str = ""
    seed: int = 42
    precision: str = "auto"  # auto: bf16 on GPUs that have it natively, else fp16 on a GPU, else fp32 (CPU)
    quantization: str = "none"  # the frozen LLM in 8-bit or 4-bit (bitsandbytes); 4bit with LoRA is QLoRA
    gradient_checkpointing: bool = False  # recompute the LLM's activations in the backward pass
    save_every: int = 1000  # optimiser steps between checkpoints (0: only the end)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk (best/ is separate)
    eval_every: int = 1000  # optimiser steps between held-out evaluations (0: only the end)
    keep_best: bool = True  # keep the best evaluated weights in OUT/best and make them OUT/final
    log_every: int = 10
    resume: str = ""  # "latest" (the newest OUT/checkpoint-N) or a checkpoint folder
    memory_limit_gb: float = 0.0  # stop before training if the estimate exceeds this; 0: the device's memory
    max_new_tokens: int = 24  # evaluation answers

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise FinetuneError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.quantization not in QUANTIZATIONS:
            raise FinetuneError(f"quantization must be one of {', '.join(QUANTIZATIONS)}")
        for name in ("save_every", "eval_every", "log_every", "keep_checkpoints", "max_new_tokens"):
            if getattr(self, name) < 0:
                raise FinetuneError(f"{name} cannot be negative")
        if self.log_every < 1 or self.keep_checkpoints < 1:
            raise FinetuneError("log_every and keep_checkpoints must be at least 1")
        if self.memory_limit_gb < 0:
            raise FinetuneError("memory_limit_gb cannot be negative")


@dataclass
class LoraConfig:
    """LoRA on the language model (llava_lora only)."""
    lora_r: int = 128
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    train_projector: bool = False  # also train the multimodal projector (fully)
    merge: bool = False  # write OUT/final as the merged model instead of base + adapter

    def __post_init__(self):
        if self.lora_r < 1 or self.lora_alpha < 1 or not 0.0 <= self.lora_dropout < 1.0 or not self.lora_targets:
            raise FinetuneError("lora_r and lora_alpha must be at least 1, lora_dropout in [0, 1), lora_targets non-empty")


@dataclass
class ClipsConfig:
    """Emotion-LLaMA on video clips (emotion_llama only)."""
    stage: int = 1  # 1: pre-training on MERR's coarse descriptions (lr 1e-5); 2: fine-grained reasons and labels (lr 1e-6)
    feature_cache: str = ""  # folder of the frozen encoders' cached features (by clip content and encoder); empty: OUT/feature-cache

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise FinetuneError(f"stage must be 1 or 2, got {self.stage}")


SECTIONS = {"data": DataConfig, "optim": OptimConfig, "run": RunConfig, "lora": LoraConfig, "clips": ClipsConfig}


@dataclass
class FinetuneConfig:
    recipe: str  # "emovit", "llava_lora" or "emotion_llama"
    model: str = ""  # hub id or local folder
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    clips: ClipsConfig = field(default_factory=ClipsConfig)

    def check_complete(self) -> None:
        missing = [flag for flag, value in (("--model", self.model), ("--data", self.data.data),
                                            ("--image-folder", self.data.image_folder),
                                            ("--output-dir", self.run.output_dir)) if not value]
        if missing:
            raise FinetuneError(f"missing {', '.join(missing)} (as flags or in the YAML file)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# LLaVA-1.5's LoRA script (scripts/v1_5/finetune_lora.sh) where it differs from InstructBLIP's defaults.
RECIPE_DEFAULTS = {
    "emovit": {},
    "llava_lora": {"optim": {"learning_rate": 2e-4, "weight_decay": 0.0, "warmup_steps": 0, "warmup_ratio": 0.03},
                   "data": {"max_length": 2048}},
    # Emotion-LLaMA: MER2023's classes; the learning rate follows the stage (STAGE_LEARNING_RATES) unless given.
    # Its LoRA set-up is part of the checkpoint (init), so the lora section does not apply.
    "emotion_llama": {"data": {"class_set": "mer2023"}},
}
STAGE_LEARNING_RATES = {1: 1e-5, 2: 1e-6}


def _field_owner() -> dict[str, str]:
    """flag name -> section ("" for top-level); field names are unique across sections."""
    owner = {"model": ""}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            owner[f.name] = section
    return owner


def _section_values(cls, values: dict, where: str) -> dict:
    if not isinstance(values, dict):
        raise FinetuneError(f"{where} must be a mapping of settings")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise FinetuneError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {where}; "
                            f"known: {', '.join(sorted(known))}")
    return values


def read_yaml(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FinetuneError(f"config file {path.name} not found")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise FinetuneError(f"config file {path.name} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise FinetuneError(f"config file {path.name} must hold a mapping")
    unknown = sorted(set(loaded) - set(SECTIONS) - {"model", "recipe"})
    if unknown:
        raise FinetuneError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {path.name}; "
                            f"top-level keys: model, recipe, {', '.join(SECTIONS)}")
    for section, cls in SECTIONS.items():
        _section_values(cls, loaded.get(section) or {}, f"{path.name} [{section}]")
    return loaded


def build(recipe: str, yaml_values: dict | None = None, overrides: dict | None = None) -> FinetuneConfig:
    """Defaults < recipe defaults < YAML < ``overrides`` (flag name -> value), validated."""
    if recipe not in RECIPE_DEFAULTS:
        raise FinetuneError(f"unknown recipe {recipe!r}")
    yaml_values = yaml_values or {}
    if yaml_values.get("recipe", recipe) != recipe:
        raise FinetuneError(f"the config file is for the {yaml_values['recipe']} recipe, not {recipe}")
    merged = {section: dict(RECIPE_DEFAULTS[recipe].get(section, {})) for section in SECTIONS}
    for section, cls in SECTIONS.items():
        merged[section].update(_section_values(cls, yaml_values.get(section) or {}, f"[{section}]"))
    model = yaml_values.get("model", "")
    owner = _field_owner()
    for name, value in (overrides or {}).items():
        if name not in owner:
            raise FinetuneError(f"unknown setting {name}")
        if owner[name] == "":
            model = value
        else:
            merged[owner[name]][name] = value
    if recipe == "emotion_llama" and "learning_rate" not in merged["optim"]:
        merged["optim"]["learning_rate"] = STAGE_LEARNING_RATES.get(merged["clips"].get("stage", 1), 1e-5)
    try:
        sections = {section: cls(**merged[section]) for section, cls in SECTIONS.items()}
    except TypeError as exc:
        raise FinetuneError(f"bad setting: {exc}") from None
    return FinetuneConfig(recipe=recipe, model=str(model or ""), **sections)


# ------------------------------------------------------------------------------------------------
# command line: every field is a flag


def _flag_type(annotation):
    if annotation in ("bool", bool):
        return bool
    if annotation in ("int", int):
        return int
    if annotation in ("float", float):
        return float
    if isinstance(annotation, str) and annotation.startswith("list"):
        return list
    return str


def _field_help(cls) -> dict[str, str]:
    """Each field's trailing comment in the dataclass source: the one place its meaning is written."""
    import inspect
    import re

    pattern = re.compile(r"^\s+(\w+): [^=]+=.*?#\s*(.+)$")
    return {m.group(1): m.group(2) for line in inspect.getsource(cls).splitlines() if (m := pattern.match(line))}


def parser(recipe: str) -> argparse.ArgumentParser:
    description = {"emovit": "EmoVIT: Q-Former-only instruction tuning of InstructBLIP",
                   "llava_lora": "LoRA (or QLoRA) on the language model of a LLaVA model",
                   "emotion_llama": "Emotion-LLaMA: projections and LoRA on MERR clips (stage 1 or 2)"}[recipe]
    prog = "python -m finetune.emotion_llama train" if recipe == "emotion_llama" else f"python -m finetune.{recipe}"
    p = argparse.ArgumentParser(prog=prog, description=description,
                                argument_default=argparse.SUPPRESS, allow_abbrev=False)
    p.add_argument("--config", help="YAML file mirroring the dataclasses (finetune/configs/*.yaml)")
    p.add_argument("--model", help="InstructBLIP / LLaVA / Emotion-LLaMA hub id or local folder")
    if recipe == "emotion_llama":
        p.add_argument("--merr", dest="data", help="MERR JSON (ours from emo_core.merr_annotate, or a public MERR file)")
        p.add_argument("--videos", dest="image_folder", help="folder of the clips the MERR file names")
    for section, cls in SECTIONS.items():
        group = p.add_argument_group(section, (cls.__doc__ or "").strip())
        helps = _field_help(cls)
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            kind = _flag_type(f.type)
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            default = RECIPE_DEFAULTS[recipe].get(section, {}).get(f.name, default)
            shown = ",".join(default) if isinstance(default, list) else default
            text = (helps.get(f.name, "") + (f" [default {shown}]" if shown != "" else "")).replace("%", "%%")
            if kind is bool:
                group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=text)
            elif kind is list:
                group.add_argument(flag, dest=f.name, type=_comma_list, help=f"comma-separated; {text}")
            else:
                group.add_argument(flag, dest=f.name, type=kind, help=text)
    return p


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def from_args(recipe: str, argv: list[str] | None = None) -> FinetuneConfig:
    args = vars(parser(recipe).parse_args(argv))
    yaml_values = read_yaml(args.pop("config")) if "config" in args else {}
    config = build(recipe, yaml_values, args)
    config.check_complete()
    return config


def write_yaml(config: FinetuneConfig, path: Path) -> None:
    """The resolved configuration, reloadable with --config (the run's record of what it trained with)."""
    import yaml

    values = config.to_dict()
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")

