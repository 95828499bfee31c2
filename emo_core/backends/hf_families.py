"""Model families for the transformers backend: what differs between InstructBLIP, LLaVA, Qwen-Omni...

A family is looked up by the checkpoint's ``config.model_type`` in ``FAMILIES`` (an explicit table,
never a substring of the model id). It says which class loads the checkpoint, which sub-module writes
the text, which media the model takes, and how a conversation becomes processor inputs:

- with a chat template (LLaVA, LLaVA-NeXT, Idefics3/SmolVLM, Qwen-Omni, ...) the messages are rendered
  by the checkpoint's own template, media parts becoming the template's placeholders;
- without one (BLIP-2, InstructBLIP) the text parts are the prompt as the task wrote it, and the
  processor adds the image's query tokens itself (these models take exactly one image).

A video becomes ``FRAMES_PER_VIDEO`` frames shown as images (see ``hf_media``); for a model that hears,
its audio track is added as an audio part unless the messages already hold one.
Any ``AutoModelForImageTextToText`` model type missing from the table gets ``DEFAULT_FAMILY``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BackendError, CapabilityError, InvalidInputError
from ..settings import Settings
from . import hf_media
from .base import Message

# Frames per video: enough to see an expression change in a short clip, few enough that the frames
# of LLaVA-1.5 (576 tokens each) leave room in its 4k context for the prompt and the answer.
FRAMES_PER_VIDEO = 4


@dataclass(frozen=True)
class Family:
    name: str
    # transformers class name; empty: AutoModelForImageTextToText picks it from the config
    model_class: str = ""
    load_kwargs: dict = field(default_factory=dict)
    # attribute of the loaded model that holds the text-writing model (Qwen-Omni's "thinker")
    text_module: str = ""
    accepts: frozenset[str] = frozenset({"image", "video"})
    single_image: bool = False
    # attribute of the text model that continues from a key/value cache without the media; empty: the
    # text model itself (BLIP-2 / InstructBLIP's top-level forward always wants the image)
    continuation_module: str = ""
    # how a video reaches the processor: "frames" (FRAMES_PER_VIDEO images) or "clip" (Emotion-LLaMA's
    # peak frame, face sequence and audio from the MERR pipeline, ``models.emotion_llama.clip_views``)
    video_as: str = "frames"

    @property
    def capabilities(self) -> frozenset[str]:
        return self.accepts | {"generate", "continue", "score"}


DEFAULT_FAMILY = Family("image-text-to-text")
_ONE_IMAGE = dict(accepts=frozenset({"image"}), single_image=True, continuation_module="language_model")

FAMILIES: dict[str, Family] = {
    "instructblip": Family("InstructBLIP", **_ONE_IMAGE),
    "blip-2": Family("BLIP-2", **_ONE_IMAGE),
    "llava": Family("LLaVA"),
    "llava_next": Family("LLaVA-NeXT"),
    "idefics3": Family("Idefics3 / SmolVLM"),
    "smolvlm": Family("SmolVLM2"),
    "qwen2_5_omni": Family(
        "Qwen2.5-Omni",
        model_class="Qwen2_5OmniForConditionalGeneration",
        # Text answers only: skip the speech "talker" and vocoder (about a third of the weights).
        load_kwargs={"enable_audio_output": False},
        text_module="thinker",
        accepts=frozenset({"image", "video", "audio"}),
    ),
    # the project's own model (emo_core.models.emotion_llama): one clip, its sound included
    "emotion_llama": Family("Emotion-LLaMA", accepts=frozenset({"video"}), video_as="clip"),
}


def family_for(model_type: str) -> Family:
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return DEFAULT_FAMILY
    supported = sorted(set(FAMILIES) | {"any image-text-to-text model type of transformers"})
    raise BackendError(f"the hf backend cannot load a model of type {model_type!r}; supported: {', '.join(supported)}")


@dataclass
class PromptAndMedia:
    text: str
    images: list = field(default_factory=list)
    audios: list = field(default_factory=list)
    videos: list = field(default_factory=list)  # clip views, for families whose video_as is "clip"


def prompt_and_media(messages: list[Message], family: Family, processor,
                     settings: Settings | None = None) -> PromptAndMedia:
    """The prompt string and the decoded media, in the order their placeholders appear; videos and
    audio are read within ``settings``' limits (``max_video_seconds``, ``video_max_side``)."""
    settings = settings or Settings()
    gathered = PromptAndMedia(text="")
    wants_video_audio = "audio" in family.accepts and not _has_part(messages, "audio")
    conversation = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts = []
        for part in content or []:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part["text"]})
                continue
            if kind not in family.accepts:
                raise CapabilityError(f"{family.name} models do not take {kind} input")
            if kind == "image":
                gathered.images.append(hf_media.load_image(part["path"]))
                parts.append({"type": "image"})
            elif kind == "video" and family.video_as == "clip":
                from ..models.emotion_llama.clip_views import clip_views

                gathered.videos.append(clip_views(part["path"], settings))
                parts.append({"type": "video"})
            elif kind == "video":
                frames = hf_media.video_frames(part["path"], FRAMES_PER_VIDEO, settings)
                gathered.images += frames
                parts += [{"type": "image"}] * len(frames)
                audio = hf_media.load_audio(part["path"], settings) if wants_video_audio else None
                if audio is not None:
                    gathered.audios.append(audio)
                    parts.append({"type": "audio"})
            elif kind == "audio":
                audio = hf_media.load_audio(part["path"], settings)
                if audio is None:
                    raise InvalidInputError(f"{Path(part['path']).name} has no audio track")
                gathered.audios.append(audio)
                parts.append({"type": "audio"})
            else:
                raise CapabilityError(f"unknown message part type {kind!r}")
        conversation.append({"role": message.get("role", "user"), "content": parts})

    if getattr(processor, "chat_template", None):
        gathered.text = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    else:
        # No template (BLIP-2, InstructBLIP): the instruction text is the prompt, as in the papers' code.
        gathered.text = "\n".join(p["text"] for m in conversation for p in m["content"] if p["type"] == "text")
    if family.single_image and len(gathered.images) != 1:
        raise CapabilityError(f"{family.name} models read exactly one image; the messages hold {len(gathered.images)}")
    return gathered


def processor_inputs(processor, prompt: PromptAndMedia):
    """Tensors for one conversation (batch of one), as the checkpoint's processor builds them."""
    kwargs = {"text": [prompt.text], "return_tensors": "pt"}
    if prompt.images:
        kwargs["images"] = prompt.images
    if prompt.audios:
        kwargs["audio"] = prompt.audios
    if prompt.videos:
        kwargs["videos"] = prompt.videos
    try:
        return processor(**kwargs)
    except (ValueError, TypeError, IndexError) as exc:
        raise BackendError(f"the model's processor could not prepare this input: {exc}") from exc


def _has_part(messages: list[Message], kind: str) -> bool:
    return any(
        isinstance(m.get("content"), list) and any(p.get("type") == kind for p in m["content"]) for m in messages
    )
