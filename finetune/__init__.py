"""Fine-tuning recipes (EmoVIT's Q-Former-only tuning of InstructBLIP; LoRA on LLaVA; Emotion-LLaMA's two
stages) on accelerate.

    python -m finetune.emovit --model DIR_OR_ID --data train.json --image-folder images --output-dir out
    python -m finetune.llava_lora --model DIR_OR_ID --data train.json --image-folder images --output-dir out --merge
    accelerate launch --config_file finetune/configs/accelerate/multi_gpu.yaml -m finetune.emovit ...
    python -m finetune.emotion_llama init --tiny OUT; python -m finetune.emotion_llama train --stage 1 ...

Modules: ``config`` (dataclasses, YAML, flags), ``data`` (reading, type mixing, fractions), ``batches``
(prompts, labels on answer tokens only, padding), ``models`` (loading, freezing, LoRA, quantisation),
``memory`` (the estimate before training and the README tables), ``trainer`` (the accelerate loop,
checkpoints, resume, evaluation, logs); Emotion-LLaMA's ``emotion_llama_init`` (start checkpoints),
``emotion_llama_data`` (MERR files), ``emotion_llama_batches`` and ``feature_cache`` (cached encoder
features). Nothing here is imported by ``emo_core`` or the app.
"""

from emo_core.errors import EmoError


class FinetuneError(EmoError):
    """A problem with the run's input or set-up, found before any training step; the message is for a person."""
