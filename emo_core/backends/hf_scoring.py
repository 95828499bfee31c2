"""Log-likelihood of candidate answers in one batched forward pass (the ``score`` of the hf backend).

For a prompt (with its image, frames, audio) and candidates c_1..c_K, the batch holds K copies of the
prompt, each followed by one candidate's tokens and right-padded to the longest; every media tensor is
repeated K times. One forward pass then gives, for each candidate,

    log p(c_k | prompt) = sum over the tokens t_j of c_k of log p(t_j | prompt, t_<j)

a **sum, not length-normalised**: it is the probability that the model writes exactly that label, so a
label spelled in more tokens is not favoured by averaging (a softmax over these sums is the model's
distribution over the candidates when it must pick one of them).

Each candidate is tokenised on its own, without special tokens, as the first words of an answer:
sentencepiece tokenizers (LLaMA/Vicuna) then start it with their word-boundary mark and byte-level
ones (Qwen) without a space, which is how each family starts its answers after the prompt. For an
encoder-decoder language model (InstructBLIP/BLIP-2 on Flan-T5) the prompt goes to the encoder and the
candidate is scored by the decoder from its start token.
"""

from __future__ import annotations

import inspect

from ..errors import BackendError

_TEXT_KEYS = ("input_ids", "attention_mask")
# Per-token tensors some processors add beside input_ids (Qwen2-VL's modality of each token); the
# candidate tokens are text, type 0.
TOKEN_ALIGNED_KEYS = ("token_type_ids", "mm_token_type_ids")


def candidate_token_ids(tokenizer, candidates: list[str]) -> list[list[int]]:
    token_ids = [tokenizer(candidate, add_special_tokens=False)["input_ids"] for candidate in candidates]
    empty = [candidate for candidate, ids in zip(candidates, token_ids) if not ids]
    if empty:
        raise BackendError(f"these candidate answers are empty once tokenised: {empty}")
    return token_ids


def score_candidates(text_model, tokenizer, inputs, candidates: list[str], encoder_decoder: bool) -> list[float]:
    """Summed log-probabilities of each candidate after the prompt in ``inputs`` (a batch of one)."""
    import torch

    if inputs["input_ids"].shape[0] != 1:
        raise BackendError("score takes one conversation at a time")
    token_ids = candidate_token_ids(tokenizer, candidates)
    count, longest = len(candidates), max(len(ids) for ids in token_ids)
    device = inputs["input_ids"].device
    pad_id = _pad_id(tokenizer)
    targets = torch.full((count, longest), pad_id, dtype=torch.long, device=device)
    target_mask = torch.zeros((count, longest), dtype=torch.long, device=device)
    for row, ids in enumerate(token_ids):
        targets[row, : len(ids)] = torch.tensor(ids, device=device)
        target_mask[row, : len(ids)] = 1

    # Media and other per-conversation tensors, one copy per candidate. Batch-first tensors (pixel_values
    # of LLaVA, input_features) become K rows; flattened per-image tensors (Qwen's pixel_values and
    # image_grid_thw) become K concatenated copies, which is the same layout for a batch of K.
    batch = {key: _repeat(value, count) for key, value in inputs.items() if key not in _TEXT_KEYS}
    prompt_ids = inputs["input_ids"]
    prompt_mask = inputs.get("attention_mask")
    if prompt_mask is None:
        prompt_mask = torch.ones_like(prompt_ids)

    with torch.inference_mode():
        if encoder_decoder:
            start = text_model.config.get_text_config().decoder_start_token_id
            decoder_ids = torch.cat([torch.full((count, 1), start, dtype=torch.long, device=device),
                                     targets[:, :-1]], dim=1)
            decoder_mask = torch.cat([torch.ones((count, 1), dtype=torch.long, device=device),
                                      target_mask[:, :-1]], dim=1)
            logits = text_model(
                input_ids=prompt_ids.repeat(count, 1), attention_mask=prompt_mask.repeat(count, 1),
                decoder_input_ids=decoder_ids, decoder_attention_mask=decoder_mask, **batch,
            ).logits
        else:
            prompt_length = prompt_ids.shape[1]
            input_ids = torch.cat([prompt_ids.repeat(count, 1), targets], dim=1)
            attention_mask = torch.cat([prompt_mask.repeat(count, 1), target_mask], dim=1)
            for key in TOKEN_ALIGNED_KEYS:
                if key in batch:
                    batch[key] = torch.cat([batch[key], torch.zeros_like(targets, dtype=batch[key].dtype)], dim=1)
            if _accepts(text_model, "logits_to_keep"):
                # Only the positions that predict candidate tokens: the vocabulary-wide logits of the
                # whole prompt would be K x prompt x vocab floats (gigabytes for a 150k vocabulary).
                batch["logits_to_keep"] = longest + 1
            logits = text_model(input_ids=input_ids, attention_mask=attention_mask, **batch).logits
            # position p predicts token p + 1: the candidate tokens are predicted from prompt_length - 1 on
            first = logits.shape[1] - (longest + 1) if "logits_to_keep" in batch else prompt_length - 1
            logits = logits[:, first: first + longest]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        token_log_probs = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * target_mask
        sums = token_log_probs.sum(dim=-1)
    return [float(value) for value in sums.cpu()]


def _repeat(value, count: int):
    import torch

    if isinstance(value, torch.Tensor) and value.dim() > 0:
        return value.repeat(count, *([1] * (value.dim() - 1)))
    return value


def _pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0  # masked out anyway


def _accepts(model, parameter: str) -> bool:
    return parameter in inspect.signature(model.forward).parameters
