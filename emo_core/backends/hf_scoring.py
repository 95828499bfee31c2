"""Log-likelihood of candidate answers, the prompt and its media run once (the ``score`` of the hf backend).

For a prompt (with its image, frames, audio) and candidates c_1..c_K:

    log p(c_k | prompt) = sum over the tokens t_j of c_k of log p(t_j | prompt, t_<j)

a **sum, not length-normalised**: it is the probability that the model writes exactly that label, so a
label spelled in more tokens is not favoured by averaging (a softmax over these sums is the model's
distribution over the candidates when it must pick one of them).

Two forward passes, whatever K is:

1. *prefill*: the prompt with its media, a batch of one, keeping the key/value cache. Its last position
   gives the log-probability of every candidate's first token; the vision (and audio) encoders run
   here, once (before, the prompt and its media were repeated K times in one batch).
2. *continuation*: the cache repeated K times, then every candidate's tokens but its last (right-padded
   to the longest) in one batch of K, without media; position p predicts token p + 1. A candidate of
   one token needs no continuation. Right padding is harmless: with causal attention a real token never
   sees the padding after it, and the prompt (a batch of one) has no padding, so no mask is passed
   (multimodal-rotary models then take their positions from the cache length plus the prompt's
   rope offset, as in generation).

BLIP-2 / InstructBLIP continue on their language model (``continuation_model``): their top-level
forward always wants the image. For an encoder-decoder language model (Flan-T5) the prefill runs the
encoder and the decoder's start token; the continuation reuses the encoder output and the cache.

Each candidate is tokenised on its own, without special tokens, as the first words of an answer:
sentencepiece tokenizers (LLaMA/Vicuna) then start it with their word-boundary mark and byte-level
ones (Qwen) without a space, which is how each family starts its answers after the prompt.
"""

from __future__ import annotations

import inspect

from ..errors import BackendError

_TEXT_KEYS = ("input_ids", "attention_mask")
# Per-token tensors some processors add beside input_ids (Qwen2-VL's modality of each token); appended
# text tokens are type 0.
TOKEN_ALIGNED_KEYS = ("token_type_ids", "mm_token_type_ids")


def candidate_token_ids(tokenizer, candidates: list[str]) -> list[list[int]]:
    token_ids = [tokenizer(candidate, add_special_tokens=False)["input_ids"] for candidate in candidates]
    empty = [candidate for candidate, ids in zip(candidates, token_ids) if not ids]
    if empty:
        raise BackendError(f"these candidate answers are empty once tokenised: {empty}")
    return token_ids


def score_candidates(text_model, continuation_model, tokenizer, inputs, candidates: list[str],
                     encoder_decoder: bool) -> list[float]:
    """Summed log-probabilities of each candidate after the prompt in ``inputs`` (a batch of one)."""
    import torch

    if inputs["input_ids"].shape[0] != 1:
        raise BackendError("score takes one conversation at a time")
    token_ids = candidate_token_ids(tokenizer, candidates)
    count, longest = len(candidates), max(len(ids) for ids in token_ids)
    device = inputs["input_ids"].device
    targets = torch.full((count, longest), _pad_id(tokenizer), dtype=torch.long, device=device)
    target_mask = torch.zeros((count, longest), dtype=torch.long, device=device)
    for row, ids in enumerate(token_ids):
        targets[row, : len(ids)] = torch.tensor(ids, device=device)
        target_mask[row, : len(ids)] = 1

    with torch.inference_mode():
        prefill = dict(inputs, use_cache=True)
        if encoder_decoder:
            start = text_model.config.get_text_config().decoder_start_token_id
            prefill["decoder_input_ids"] = torch.full((1, 1), start, dtype=torch.long, device=device)
        elif _accepts(text_model, "logits_to_keep"):
            prefill["logits_to_keep"] = 1  # the prompt's vocabulary-wide logits are not needed
        output = text_model(**prefill)
        # K rows of the first token's log-probabilities (the same prompt predicts every first token)
        log_probs = [torch.log_softmax(output.logits[:, -1:].float(), dim=-1).expand(count, 1, -1)]
        if longest > 1:
            language_output = getattr(output, "language_model_outputs", None) or output
            cache = language_output.past_key_values
            cache.batch_repeat_interleave(count)
            step = dict(past_key_values=cache, use_cache=True)
            if encoder_decoder:
                encoder_state = language_output.encoder_last_hidden_state
                step.update(encoder_outputs=(encoder_state.repeat(count, 1, 1),),
                            attention_mask=_prompt_mask(inputs).repeat(count, 1), decoder_input_ids=targets[:, :-1])
            else:
                step["input_ids"] = targets[:, :-1]
            logits = continuation_model(**step).logits
            log_probs.append(torch.log_softmax(logits.float(), dim=-1))
        log_probs = torch.cat(log_probs, dim=1)
        token_log_probs = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * target_mask
        sums = token_log_probs.sum(dim=-1)
    return [float(value) for value in sums.cpu()]


def _prompt_mask(inputs):
    import torch

    mask = inputs.get("attention_mask")
    return torch.ones_like(inputs["input_ids"]) if mask is None else mask


def _pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0  # masked out anyway


def _accepts(model, parameter: str) -> bool:
    return parameter in inspect.signature(model.forward).parameters
