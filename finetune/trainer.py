"""The training loop on accelerate: set-up checks, the loop, checkpoints and resume, evaluation, logs.

Runs the same under ``accelerate launch`` (one or many processes, DDP / DeepSpeed / FSDP from the
accelerate config) and plain ``python -m``. Everything that can be wrong with the input (data, images,
model type, settings, a checkpoint of another run, memory) is checked before the first step.

OUT (``--output-dir``) after a run:
- ``config.yaml``: the resolved settings (reusable with ``--config``);
- ``checkpoint-N/``: ``model/`` in the transformers format (emovit: the whole model; llava_lora: the
  adapter) with the processor, ``state/`` (accelerate's: model, optimiser, scheduler, RNG of every
  process) and ``progress.json`` (step, next micro-batch, the run's identity, the best score);
- ``best/``: the weights of the best held-out evaluation (accuracy of the categorical answers, or the
  lowest loss when the held-out data has no categorical question);
- ``final/``: the best weights when an evaluation ran and ``keep_best`` is on, else the last;
  a complete model for emovit and for ``llava_lora --merge``, the adapter otherwise;
- ``log.csv`` (step, epoch, loss, lr, samples/s, tokens/s, peak memory, the step's sample ids) and
  ``eval.csv`` (step, loss, accuracy, unparsed, n); TensorBoard events under ``tensorboard/`` when the
  package is installed.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from emo_core.run_records import file_sha256

from . import FinetuneError
from .batches import Encoder, count_tokens
from .config import FinetuneConfig, write_yaml
from .data import Example, Splits, load_splits, type_counts
from .plan import BatchPlan, PlanSampler

LOG_COLUMNS = ["step", "epoch", "loss", "lr", "samples_per_s", "tokens_per_s", "peak_memory_mib", "samples"]
EVAL_COLUMNS = ["step", "val_loss", "accuracy", "unparsed", "n"]
CHANGEABLE_ON_RESUME = ("run.output_dir", "run.resume", "run.save_every", "run.keep_checkpoints", "run.eval_every",
                        "run.log_every", "run.memory_limit_gb", "data.num_workers", "data.eval_samples",
                        "run.max_new_tokens", "lora.merge", "data.data", "data.val_data", "data.image_folder",
                        "clips.feature_cache")


def choose_precision(requested: str, cuda: bool, bf16_native: bool) -> str:
    if requested == "auto":
        return "bf16" if cuda and bf16_native else "fp16" if cuda else "no"
    if requested == "fp16" and not cuda:
        raise FinetuneError("fp16 training needs a CUDA GPU; use --precision no (or bf16) on the CPU")
    return requested


def distributed_kind(accelerator) -> str:
    kind = str(accelerator.distributed_type).rsplit(".", 1)[-1]
    if kind == "DEEPSPEED" and accelerator.state.deepspeed_plugin.zero_stage == 3:
        return "DEEPSPEED_ZERO3"
    return kind


def identity(config: FinetuneConfig) -> dict:
    """What makes two runs the same run: everything except where it writes and how often it reports."""
    flat = {}
    for section, values in config.to_dict().items():
        if isinstance(values, dict):
            flat.update({f"{section}.{k}": v for k, v in values.items()})
        else:
            flat[section] = values
    for key in CHANGEABLE_ON_RESUME:
        flat.pop(key, None)
    model_dir = Path(config.model)
    flat["model_config_sha256"] = file_sha256(model_dir / "config.json") if (model_dir / "config.json").is_file() else ""
    flat["train_data_sha256"] = file_sha256(Path(config.data.data))
    return flat


def checkpoints(out: Path) -> list[Path]:
    found = [p for p in out.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()
             and (p / "progress.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def resume_point(config: FinetuneConfig, out: Path) -> Path | None:
    """The checkpoint to resume from, after checking it belongs to this run; None for a fresh run."""
    existing = checkpoints(out)
    if not config.run.resume:
        if existing:
            raise FinetuneError(f"{out.name} already holds checkpoints of a run (newest {existing[-1].name}); pass "
                                "--resume latest to continue it, or choose another --output-dir")
        return None
    if config.run.resume == "latest":
        if not existing:
            raise FinetuneError(f"--resume latest: no checkpoint in {out.name}")
        chosen = existing[-1]
    else:
        chosen = Path(config.run.resume)
        if not (chosen / "progress.json").is_file() or not (chosen / "state").is_dir():
            raise FinetuneError(f"--resume {chosen.name}: not a checkpoint of this trainer (no progress.json/state)")
    saved = json.loads((chosen / "progress.json").read_text(encoding="utf-8"))["identity"]
    current = identity(config)
    differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differing:
        shown = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}" for k in differing[:4])
        raise FinetuneError(f"{chosen.name} is a checkpoint of another run (different {', '.join(differing)}): {shown}")
    return chosen


@dataclass
class Tracked:
    step: int = 0
    best_score: list | None = None  # [accuracy, -loss]
    best_step: int | None = None


class Logs:
    """log.csv / eval.csv (appended; a resumed run first drops rows after its checkpoint) and TensorBoard."""

    def __init__(self, out: Path, resumed_step: int | None, enabled: bool):
        self.enabled = enabled
        self.files = {"log": (out / "log.csv", LOG_COLUMNS), "eval": (out / "eval.csv", EVAL_COLUMNS)}
        self.tensorboard = None
        if not enabled:
            return
        for path, columns in self.files.values():
            rows = []
            if path.is_file() and resumed_step is not None:
                with open(path, newline="", encoding="utf-8") as handle:
                    rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resumed_step]
            with open(path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            pass

    def write(self, kind: str, row: dict) -> None:
        if not self.enabled:
            return
        path, columns = self.files[kind]
        with open(path, "a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=columns).writerow(row)
        if self.tensorboard is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "step" and value is not None:
                    self.tensorboard.add_scalar(f"{kind}/{key}", value, row["step"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def peak_memory_mib(cuda: bool) -> float:
    if cuda:
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def optimizer_for(model, config: FinetuneConfig):
    import torch

    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            # as LAVIS: no weight decay on biases, norms and other vectors
            (no_decay if parameter.ndim < 2 or name.endswith(".bias") else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.optim.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.optim.learning_rate,
                             betas=(config.optim.adam_beta1, config.optim.adam_beta2))


def check_memory(model, config: FinetuneConfig, cuda: bool, say, kind: str = "NO", processes: int = 1) -> None:
    import torch

    from .memory import GIB, activation_bytes

    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    weights = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    from .memory import Estimate

    layers = getattr(text, "num_hidden_layers", None) or getattr(text, "num_layers", 1)
    hidden = getattr(text, "hidden_size", None) or getattr(text, "d_model", 1)
    # ZeRO-2 shards the trained states over the processes; ZeRO-3 and FSDP the weights too
    states_share = processes if kind in ("DEEPSPEED", "DEEPSPEED_ZERO3", "FSDP") else 1
    weights_share = processes if kind in ("DEEPSPEED_ZERO3", "FSDP") else 1
    result = Estimate(float(weights) / weights_share, trained * 16.0 / states_share,
                      activation_bytes(config.data.max_length, hidden, layers, text.vocab_size,
                                       config.run.gradient_checkpointing),
                      config.optim.batch_size, overhead=1 * GIB if cuda else 0)
    if config.run.memory_limit_gb:
        limit, where = config.run.memory_limit_gb * GIB, f"--memory-limit-gb {config.run.memory_limit_gb}"
    elif cuda:
        limit, where = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory, "this GPU's memory"
    else:
        import psutil

        limit, where = psutil.virtual_memory().available, "the available RAM"
    say(f"memory estimate: {result.describe()}; limit {limit / GIB:.2f} GiB ({where})")
    if result.total > limit:
        raise FinetuneError(f"this set-up needs about {result.total / GIB:.2f} GiB but {where} is {limit / GIB:.2f} GiB: "
                            "lower --batch-size (raise --gradient-accumulation), add --gradient-checkpointing, "
                            "quantise the LLM (--quantization 8bit/4bit) or shard with DeepSpeed/FSDP")


def run(config: FinetuneConfig) -> Path:
    """Train and return OUT/final."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from . import models

    config.check_complete()
    out = Path(config.run.output_dir)
    cuda = torch.cuda.is_available()
    precision = choose_precision(config.run.precision, cuda,
                                 cuda and torch.cuda.is_bf16_supported(including_emulation=False))
    accelerator = Accelerator(gradient_accumulation_steps=config.optim.gradient_accumulation,
                              mixed_precision=precision, cpu=not cuda)
    say = accelerator.print
    kind = distributed_kind(accelerator)
    if not cuda:
        say("no CUDA GPU: training on the CPU, which suits tiny models and smoke tests only")

    # --- everything that can be wrong, before any weight is loaded or step taken
    splits: Splits = _load_splits(config)
    resume_from = resume_point(config, out)
    models.check_model_type(config)
    if config.run.quantization != "none":
        models.quantization_config(config, models.load_dtype(precision), kind)
    say(f"data: {len(splits.train)} training examples {type_counts(splits.train)}, {len(splits.val)} held out; "
        f"{accelerator.num_processes} process(es), {kind}, precision {precision}")

    set_seed(config.run.seed)
    prepared = models.load(config, precision, accelerator.local_process_index if cuda else None, kind)
    model = prepared.model
    check_memory(model, config, cuda, say, kind, accelerator.num_processes)
    encoder = _encoder(config, prepared)
    encoder(splits.train[0])  # a prompt longer than max_length fails here, before any step

    optimizer = optimizer_for(model, config)
    from transformers import get_scheduler

    scheduler = get_scheduler(config.optim.scheduler, optimizer, num_warmup_steps=config.optim.warmup(),
                              num_training_steps=config.optim.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    tracked = Tracked()
    if resume_from is not None:
        accelerator.load_state(str(resume_from / "state"))
        progress = json.loads((resume_from / "progress.json").read_text(encoding="utf-8"))
        tracked = Tracked(progress["step"], progress.get("best_score"), progress.get("best_step"))
        say(f"resuming {resume_from.name} at step {tracked.step}")
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        write_yaml(config, out / "config.yaml")
    logs = Logs(out, tracked.step if resume_from is not None else None, accelerator.is_main_process)

    plan = BatchPlan(len(splits.train), config.optim.batch_size, accelerator.num_processes,
                     accelerator.process_index, config.run.seed)
    accumulation = config.optim.gradient_accumulation
    total_micro = config.optim.max_steps * accumulation
    from torch.utils.data import DataLoader

    class Encoded(torch.utils.data.Dataset):
        def __len__(self):
            return len(splits.train)

        def __getitem__(self, index):
            return encoder(splits.train[index])

    loader = DataLoader(Encoded(), batch_sampler=PlanSampler(plan, tracked.step * accumulation, total_micro),
                        collate_fn=encoder.collate, num_workers=config.data.num_workers,
                        # its own generator: starting an iterator draws a seed, which must not move the
                        # global RNG that dropout uses (a resumed run restores that RNG first)
                        generator=torch.Generator().manual_seed(config.run.seed))
    trainable = [p for p in model.parameters() if p.requires_grad]
    labels = _class_labels(config)

    micro = tracked.step * accumulation
    window = {"loss": [], "samples": 0, "tokens": 0, "ids": [], "start": time.perf_counter()}
    model.train()
    for batch in loader:
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        window["ids"] += [splits.train[i].id for i in plan.indices(micro)]
        with accelerator.accumulate(model):
            loss = model(**batch).loss
            accelerator.backward(loss)
            if accelerator.sync_gradients and config.optim.max_grad_norm:
                accelerator.clip_grad_norm_(trainable, config.optim.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
        micro += 1
        window["loss"].append(accelerator.reduce(loss.detach().float(), "mean").item())
        window["samples"] += batch["input_ids"].shape[0] * accelerator.num_processes
        window["tokens"] += count_tokens(batch) * accelerator.num_processes
        if not accelerator.sync_gradients:
            continue
        scheduler.step()
        tracked.step += 1
        step = tracked.step
        if step % config.run.log_every == 0 or step == config.optim.max_steps:
            elapsed = max(time.perf_counter() - window["start"], 1e-9)
            row = {"step": step, "epoch": plan.epoch_of(micro - 1),
                   "loss": round(sum(window["loss"]) / len(window["loss"]), 6), "lr": scheduler.get_last_lr()[0],
                   "samples_per_s": round(window["samples"] / elapsed, 3),
                   "tokens_per_s": round(window["tokens"] / elapsed, 1),
                   "peak_memory_mib": round(peak_memory_mib(cuda), 1), "samples": " ".join(window["ids"])}
            logs.write("log", row)
            say(f"step {step}/{config.optim.max_steps} loss {row['loss']:.4f} lr {row['lr']:.3g} "
                f"{row['samples_per_s']:.2f} samples/s {row['tokens_per_s']:.0f} tokens/s "
                f"peak {row['peak_memory_mib']:.0f} MiB")
            window = {"loss": [], "samples": 0, "tokens": 0, "ids": [], "start": time.perf_counter()}
        last = step == config.optim.max_steps
        paused = time.perf_counter()
        if splits.val and ((config.run.eval_every and step % config.run.eval_every == 0) or last):
            _evaluate_and_keep(accelerator, model, encoder, splits.val, labels, config, tracked, logs, prepared, say)
        if (config.run.save_every and step % config.run.save_every == 0) or last:
            _save_checkpoint(accelerator, model, prepared, config, out, tracked, micro)
        if last:
            break
        window["start"] += time.perf_counter() - paused  # evaluation and saving are not training throughput
    logs.close()
    accelerator.wait_for_everyone()
    final = out / "final"
    if accelerator.is_main_process:
        _write_final(accelerator, model, prepared, config, out, tracked, say)
    accelerator.wait_for_everyone()
    return final


def _load_splits(config: FinetuneConfig) -> Splits:
    if config.recipe == "emotion_llama":
        from .emotion_llama_data import load_splits as load_clip_splits

        return load_clip_splits(config.data, config.clips.stage, config.run.seed)
    return load_splits(config.data, config.run.seed)


def _encoder(config: FinetuneConfig, prepared) -> Encoder:
    if config.recipe == "emotion_llama":
        from .emotion_llama_batches import ClipEncoder

        cache = config.clips.feature_cache or str(Path(config.run.output_dir) / "feature-cache")
        return ClipEncoder(prepared.model, prepared.processor, config.data.image_folder, config.data.max_length, cache)
    return Encoder(prepared.processor, prepared.family, config.data.image_folder, config.data.max_length,
                   config.data.qformer_max_length, prepared.encoder_decoder)


def _class_labels(config: FinetuneConfig) -> list[str]:
    from emo_core.labels import resolve_class_set

    return list(resolve_class_set(config.data.class_set).class_set.labels)


def evaluate(model, encoder: Encoder, val: list[Example], labels: list[str], config: FinetuneConfig, device) -> dict:
    """Held-out loss over every held-out example, and the categorical answers generated and parsed."""
    import torch

    from emo_core.backends.hf import _decode_new_tokens
    from emo_core.evaluate.metrics import classification_metrics
    from emo_core.parsing import parse_prediction

    from .batches import IGNORE

    model.eval()
    losses, weights = [], []
    with torch.no_grad():
        for start in range(0, len(val), config.optim.batch_size):
            batch = encoder.collate([encoder(e) for e in val[start:start + config.optim.batch_size]])
            batch = {k: v.to(device) for k, v in batch.items()}
            count = int(batch["labels"].ne(IGNORE).sum())
            losses.append(model(**batch).loss.float().item() * count)
            weights.append(count)
        questions = [e for e in val if e.type == "categorical" and e.label in labels][:config.data.eval_samples]
        truths, predictions = [], []
        for example in questions:
            inputs = {k: v.to(device) for k, v in encoder.prompt_inputs(example).items()}
            output = model.generate(**inputs, max_new_tokens=config.run.max_new_tokens, do_sample=False)
            answer = _decode_new_tokens(encoder.tokenizer, inputs["input_ids"], output)
            truths.append(example.label)
            predictions.append(parse_prediction(answer, labels).label)
    model.train()
    result = {"val_loss": sum(losses) / max(sum(weights), 1), "accuracy": None, "unparsed": None, "n": len(questions)}
    if questions:
        metrics = classification_metrics(truths, predictions, labels, n_boot=0)
        result.update(accuracy=metrics["accuracy"], unparsed=metrics["unparsed"])
    return result


def _evaluate_and_keep(accelerator, model, encoder, val, labels, config, tracked: Tracked, logs: Logs, prepared, say):
    unwrapped = accelerator.unwrap_model(model)
    result = evaluate(unwrapped, encoder, val, labels, config, accelerator.device)
    logs.write("eval", {"step": tracked.step, **{k: (round(v, 6) if isinstance(v, float) else v)
                                                 for k, v in result.items()}})
    accuracy = "-" if result["accuracy"] is None else f"{result['accuracy']:.3f}"
    say(f"eval at step {tracked.step}: loss {result['val_loss']:.4f}, accuracy {accuracy} "
        f"({result['unparsed']} unparsed of {result['n']})")
    # accuracy first (when there are categorical questions), the lower loss breaking ties
    score = [result["accuracy"] if result["accuracy"] is not None else 0.0, -result["val_loss"]]
    if config.run.keep_best and (tracked.best_score is None or score > list(tracked.best_score)):
        tracked.best_score, tracked.best_step = score, tracked.step
        _save_model(accelerator, model, prepared, config, Path(config.run.output_dir) / "best")


def _save_model(accelerator, model, prepared, config, directory: Path) -> None:
    from . import models

    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        staging = directory.with_name(directory.name + ".tmp")
        if staging.exists():
            shutil.rmtree(staging)
        models.save_trained(accelerator.unwrap_model(model), prepared.processor, config, staging, state_dict=state)
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    accelerator.wait_for_everyone()


def _save_checkpoint(accelerator, model, prepared, config, out: Path, tracked: Tracked, micro: int) -> None:
    target = out / f"checkpoint-{tracked.step}"
    staging = out / f"checkpoint-{tracked.step}.tmp"
    if accelerator.is_main_process and staging.exists():
        shutil.rmtree(staging)
    accelerator.wait_for_everyone()
    _save_model(accelerator, model, prepared, config, staging / "model")
    accelerator.save_state(str(staging / "state"))
    if accelerator.is_main_process:
        progress = {"step": tracked.step, "next_micro_batch": micro, "best_score": tracked.best_score,
                    "best_step": tracked.best_step, "identity": identity(config)}
        (staging / "progress.json").write_text(json.dumps(progress, indent=1), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        for old in checkpoints(out)[:-config.run.keep_checkpoints]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def _write_final(accelerator, model, prepared, config, out: Path, tracked: Tracked, say) -> None:
    from . import models

    final = out / "final"
    best = out / "best"
    use_best = config.run.keep_best and tracked.best_step is not None and best.is_dir()
    source = best if use_best else out / f"checkpoint-{tracked.step}" / "model"
    if final.exists():
        shutil.rmtree(final)
    if config.recipe == "llava_lora" and config.lora.merge:
        models.merge_adapter(config, source, prepared.processor, final, prepared.load_dtype)
    else:
        shutil.copytree(source, final)
    what = f"the best evaluation (step {tracked.best_step})" if use_best else f"the last step ({tracked.step})"
    kind = "merged model" if config.recipe == "llava_lora" and config.lora.merge else (
        "LoRA adapter" if config.recipe == "llava_lora" else "model")
    say(f"final {kind} from {what} written to {final}")


