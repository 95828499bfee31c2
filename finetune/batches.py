"""Examples -> model inputs, with the loss on the answer tokens only.

The prompt is built exactly as the ``hf`` backend builds it at inference (``hf_families.prompt_and_media``
and ``processor_inputs``), so a fine-tuned model is asked in training what the image tab asks it:
- InstructBLIP: the question is the prompt; the processor puts the image's query-token placeholders
  before it and gives the same question to the Q-Former (``qformer_input_ids``), which is how InstructBLIP
  makes the visual features instruction-aware;
- LLaVA: the checkpoint's chat template renders the question with the image placeholder and the
  assistant's turn opening; the processor expands the placeholder to the image's patch tokens.

The answer is tokenised on its own and followed by the end-of-sequence token (as LAVIS does), then
appended to the prompt (decoder-only models) or given as the decoder's labels (InstructBLIP on Flan-T5).
Labels are -100 (ignored by the loss) on the prompt, the image tokens and the padding.
"""

from __future__ import annotations

from pathlib import Path

from emo_core.backends.base import user_message
from emo_core.backends.hf_families import prompt_and_media, processor_inputs

from . import FinetuneError
from .data import Example

IGNORE = -100


class Encoder:
    """Turns one example into 1-D tensors; ``collate`` pads a list of them into a batch."""

    def __init__(self, processor, family, image_folder: str | Path, max_length: int, qformer_max_length: int,
                 encoder_decoder: bool):
        self.processor = processor
        self.family = family
        self.image_folder = Path(image_folder)
        self.max_length = max_length
        self.qformer_max_length = qformer_max_length
        self.encoder_decoder = encoder_decoder
        self.tokenizer = processor.tokenizer
        if self.tokenizer.pad_token_id is None:
            raise FinetuneError("the model's tokenizer has no padding token")
        qformer_tokenizer = getattr(processor, "qformer_tokenizer", None)
        self.qformer_pad = qformer_tokenizer.pad_token_id if qformer_tokenizer is not None else None

    def prompt_inputs(self, example: Example) -> dict:
        """The prompt alone (what generation starts from), batch of one."""
        messages = user_message(example.question, image=str(self.image_folder / example.image))
        inputs = processor_inputs(self.processor, prompt_and_media(messages, self.family, self.processor))
        if "qformer_input_ids" in inputs and inputs["qformer_input_ids"].shape[1] > self.qformer_max_length:
            inputs["qformer_input_ids"] = inputs["qformer_input_ids"][:, :self.qformer_max_length]
            inputs["qformer_attention_mask"] = inputs["qformer_attention_mask"][:, :self.qformer_max_length]
        return dict(inputs)

    def answer_ids(self, answer: str) -> list[int]:
        ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        return list(ids) + [self.tokenizer.eos_token_id]

    def __call__(self, example: Example) -> dict:
        import torch

        inputs = self.prompt_inputs(example)
        prompt = inputs.pop("input_ids")[0]
        inputs.pop("attention_mask", None)
        answer = self.answer_ids(example.answer)
        if self.encoder_decoder:
            prompt = prompt[:self.max_length]
            labels = torch.tensor(answer[:self.max_length])
            features = {"input_ids": prompt, "labels": labels}
        else:
            room = self.max_length - prompt.shape[0]
            if room < 1:
                raise FinetuneError(f"max_length {self.max_length} leaves no room for an answer: the prompt of "
                                    f"example {example.id} is {prompt.shape[0]} tokens with the image's; raise --max-length")
            answer_tensor = torch.tensor(answer[:room])
            features = {"input_ids": torch.cat([prompt, answer_tensor]),
                        "labels": torch.cat([torch.full_like(prompt, IGNORE), answer_tensor])}
        for key, value in inputs.items():
            features[key] = value[0] if key in ("qformer_input_ids", "qformer_attention_mask") else value
        return features

    def collate(self, features: list[dict]) -> dict:
        import torch

        def pad(key: str, value: int):
            rows = [f[key] for f in features]
            out = torch.full((len(rows), max(r.shape[0] for r in rows)), value, dtype=rows[0].dtype)
            for i, row in enumerate(rows):
                out[i, :row.shape[0]] = row
            return out

        batch = {"input_ids": pad("input_ids", self.tokenizer.pad_token_id), "labels": pad("labels", IGNORE)}
        batch["attention_mask"] = pad("input_ids", -1).ne(-1).long()
        if self.encoder_decoder:
            batch["decoder_attention_mask"] = batch["labels"].ne(IGNORE).long()
        if "qformer_input_ids" in features[0]:
            batch["qformer_input_ids"] = pad("qformer_input_ids", self.qformer_pad)
            batch["qformer_attention_mask"] = pad("qformer_attention_mask", 0)
        for key in features[0]:
            if key not in batch and key != "qformer_attention_mask":
                batch[key] = torch.cat([f[key] for f in features])  # pixel_values (and image sizes)
        return batch


def count_tokens(batch: dict) -> int:
    """Real (non-padding) tokens of a batch: the prompt's and, for encoder-decoders, the answer's."""
    total = int(batch["attention_mask"].sum())
    if "decoder_attention_mask" in batch:
        total += int(batch["decoder_attention_mask"].sum())
    return total
