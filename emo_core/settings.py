"""All run-time settings in one dataclass, read from ``EMO_*`` environment variables and CLI flags.

Every field has a default that runs the embedded offline backend on a CPU. A field ``max_upload_mb``
is read from ``EMO_MAX_UPLOAD_MB`` and set on the command line with ``--max-upload-mb``; flags win
over environment variables, which win over defaults. Nothing else in the project reads ``os.environ``
for configuration.

    python app.py --help          # lists every setting with its env variable
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping, Sequence

from .model_allowlist import BACKEND_NAMES, parse_allowlist

from .errors import UnknownClassSetError
from .labels import IMAGE_CLASS_SETS, VIDEO_CLASS_SETS, class_set_name, get_class_set

ENV_PREFIX = "EMO_"


@dataclass
class Settings:
    """Settings of the library and the app. Validated in ``__post_init__``."""

    backend: str = field(default="offline", metadata={"help": "model backend: offline, hf or openai"})
    model: str = field(default="", metadata={"help": "model id or local directory (hf / openai backends)"})
    device: str = field(default="auto", metadata={"help": "torch device for the hf backend: auto, cpu, cuda, mps"})
    dtype: str = field(default="auto", metadata={"help": "hf weights dtype: auto (bf16/fp16 on GPU, fp32 on CPU), float32, bfloat16, float16"})
    quantization: str = field(default="none", metadata={"help": "hf quantised loading with bitsandbytes: none, 8bit, 4bit"})
    max_memory: str = field(default="", metadata={"help": "hf placement limits for accelerate, e.g. '0:10GiB,cpu:30GiB'"})
    openai_base_url: str = field(default="", metadata={"help": "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (empty: the official API)"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "name of the environment variable that holds the API key"})
    request_timeout: float = field(default=60.0, metadata={"help": "seconds before an openai request times out"})
    max_retries: int = field(default=3, metadata={"help": "retries on 429/5xx/timeouts for the openai backend"})
    data_dir: Path = field(default=Path("data"), metadata={"help": "where votes, reviews and job results are kept"})
    host: str = field(default="127.0.0.1", metadata={"help": "address the app listens on"})
    port: int = field(default=7860, metadata={"help": "port the app listens on"})
    max_upload_mb: float = field(default=25.0, metadata={"help": "largest accepted upload, in MB"})
    max_image_pixels: int = field(
        default=60_000_000, metadata={"help": "images with more pixels than this are refused (decompression-bomb guard)"}
    )
    analysis_max_side: int = field(
        default=1920, metadata={"help": "larger images are downscaled to this longest side before analysis"}
    )
    max_batch_images: int = field(default=50, metadata={"help": "most images in one multi-file analysis"})
    image_class_set: str = field(default="mikels8", metadata={
        "help": "class set the image tab starts with: a key (mikels8, emotion6, ...) or a dataset "
                "(emoset, fi, fer2013, ...)"})
    video_class_set: str = field(default="mer2023", metadata={
        "help": "class set of video analysis (the video tab, merr_annotate): a key (mer2023, merr9, dfew7) or a "
                "dataset (merr, dfew, ...)"})
    min_face_score: float = field(default=0.5, metadata={"help": "face detector confidence threshold"})
    max_faces: int = field(default=20, metadata={"help": "most faces classified per image"})
    video_sample_fps: float = field(default=5.0, metadata={"help": "frames per second examined for faces and action units"})
    max_video_seconds: float = field(default=60.0, metadata={"help": "longer videos are analysed over their first this many seconds"})
    video_max_side: int = field(default=960, metadata={"help": "video frames are decoded at most this large"})
    llm_threads: int = field(default=0, metadata={"help": "threads of the offline language model (0: every core)"})
    llm_process: str = field(default="worker", metadata={
        "help": "where the offline language model runs: worker (a process of its own, about twice as fast "
                "beside the other models) or inline (this process)"})
    llm_embedding: str = field(default="q4_0", metadata={
        "help": "token-embedding type of the offline language model file: q4_0 (derived, faster) or q8_0 (as shipped)"})
    llm_start_deadline: float = field(default=120.0, metadata={
        "help": "seconds the language model process may take to start the first time (it may assemble its "
                "model file then); worker only"})
    llm_restart_deadline: float = field(default=30.0, metadata={
        "help": "seconds a later start of the language model process may take (model file in place); worker only"})
    llm_first_token_deadline: float = field(default=60.0, metadata={
        "help": "seconds from a reason request to the language model's first token (a slow read of a long "
                "prompt); past it the template reason is shown; worker only"})
    llm_token_deadline: float = field(default=5.0, metadata={
        "help": "seconds the language model process may stay silent (between tokens, or between reports "
                "of progress on the prompt); past it the process is restarted and the template reason "
                "shown; worker only"})
    allow_model_switch: bool = field(default=False, metadata={
        "help": "let visitors pick another model in the image tab (only among --model-allowlist); off: every "
                "request uses --backend/--model"})
    model_allowlist: str = field(default="", metadata={
        "help": "models visitors may pick when --allow-model-switch is on: comma-separated backend:model entries, "
                "each optionally named, e.g. 'offline,InstructBLIP 7B=hf:Salesforce/instructblip-vicuna-7b,"
                "openai:gpt-4o-mini'; the name is what visitors see and send (a local folder shows its name only)"})
    max_loaded_models: int = field(default=1, metadata={
        "help": "most idle models kept loaded per backend; a model in use by a request is never unloaded"})
    hub_access: str = field(default="auto", metadata={
        "help": "may the hf backend download from the Hugging Face hub: auto (only when an hf model is configured "
                "or allow-listed), online, or offline (local folders and the local hub cache only)"})
    max_queue: int = field(default=16, metadata={
        "help": "requests that may wait in the queue; beyond it a visitor is told the server is busy"})
    concurrency: int = field(default=1, metadata={"help": "requests each tab analyses at once"})
    cache_max_age: int = field(default=3600, metadata={
        "help": "seconds an upload or a result file stays in the app's file cache before it is deleted"})
    eval_bootstrap: int = field(default=1000, metadata={
        "help": "bootstrap resamples behind the 95 percent intervals of evaluation metrics (0: no intervals)"})
    eval_workers: int = field(default=2, metadata={
        "help": "samples an evaluation run with the offline backend analyses at once (its models lock their own "
                "graphs); other backends answer one question at a time"})
    eval_max_samples: int = field(default=200, metadata={
        "help": "most samples one dataset evaluation in the Instruction sensitivity tab may run"})
    eval_max_zip_mb: float = field(default=200.0, metadata={
        "help": "largest unpacked size, in MB, of a dataset zip uploaded to the Instruction sensitivity tab "
                "(the upload itself is limited by --max-upload-mb)"})
    eval_max_zip_files: int = field(default=2000, metadata={
        "help": "most entries in a dataset zip uploaded to the Instruction sensitivity tab"})
    eval_data_root: str = field(default="", metadata={
        "help": "a folder under which the Instruction sensitivity tab may read datasets by their path (empty: "
                "visitors cannot name server folders)"})
    preload: bool = field(default=True, metadata={"help": "load the offline models in the background at app start"})
    torch_threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch's default)"})
    # instruction-data generator (python -m emo_core.datagen); its command takes each as a flag without
    # the datagen_ prefix (--model, --concurrency, ...), which wins over these
    datagen_base_url: str = field(default="", metadata={
        "help": "generator: OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (empty: the official API)"})
    datagen_model: str = field(default="", metadata={"help": "generator: the model the endpoint serves, e.g. gpt-4o"})
    datagen_api_key_env: str = field(default="OPENAI_API_KEY", metadata={
        "help": "generator: name of the environment variable that holds the API key (a local endpoint may need none)"})
    datagen_temperature: float = field(default=1.0, metadata={"help": "generator: sampling temperature, 0 to 2"})
    datagen_max_tokens: int = field(default=1024, metadata={"help": "generator: most tokens of one answer"})
    datagen_concurrency: int = field(default=8, metadata={
        "help": "generator: most requests in flight; fewer for a while after a 429 or a timeout"})
    datagen_timeout: float = field(default=120.0, metadata={"help": "generator: seconds before a request times out"})
    datagen_max_retries: int = field(default=5, metadata={
        "help": "generator: retries of a request after a 429, a 5xx, a timeout or a refused connection"})
    datagen_price_input_per_1k: float = field(default=0.0, metadata={
        "help": "generator: USD per 1000 prompt tokens, for the cost ledger and --budget-usd"})
    datagen_price_output_per_1k: float = field(default=0.0, metadata={
        "help": "generator: USD per 1000 answer tokens, for the cost ledger and --budget-usd"})
    datagen_measure: str = field(default="models", metadata={
        "help": "generator: how attributes the input lacks are measured: models (brightness, colorfulness and the "
                "image tab's face, expression, object and pose models), low-level (brightness and colorfulness "
                "only) or none; what is not measured is recorded as such"})
    datagen_captioner: str = field(default="none", metadata={
        "help": "generator: where captions the input lacks come from: none (the measured attributes alone) or "
                "backend (the --backend/--model configured above, through the backend seam; offline has no captioner)"})
    review_overlap: float = field(default=0.10, metadata={
        "help": "share of imported samples (0 to 1) that two annotators review, each blind to the other, to "
                "measure agreement"})
    review_lease_seconds: float = field(default=900.0, metadata={
        "help": "seconds a sample shown to an annotator stays reserved for them; past it an undecided sample "
                "returns to the queue"})
    review_concurrency: int = field(default=8, metadata={"help": "review desk requests served at once"})
    study_base_url: str = field(default="", metadata={
        "help": "address of the app in raters' personal study links, e.g. https://my-space.hf.space "
                "(empty: http://HOST:PORT)"})
    vote_rate_per_rater: int = field(default=30, metadata={
        "help": "most votes one study rater may cast per minute (0: no limit)"})
    vote_rate_per_address: int = field(default=600, metadata={
        "help": "most vote-page requests per minute from one client address (0: no limit); behind a proxy "
                "every rater may share the proxy's address"})
    study_image_max_side: int = field(default=1280, metadata={
        "help": "study images are stored for raters downscaled to this longest side"})

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.backend not in BACKEND_NAMES:
            raise ValueError(f"unknown backend {self.backend!r}: choose offline, hf or openai")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        for name in ("max_upload_mb", "max_image_pixels", "analysis_max_side", "max_batch_images", "max_faces",
                     "video_sample_fps", "max_video_seconds", "video_max_side"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("llm_start_deadline", "llm_restart_deadline", "llm_first_token_deadline", "llm_token_deadline"):
            if not 0 < getattr(self, name) < math.inf:  # also refuses nan
                raise ValueError(f"{name} must be a positive, finite number of seconds, got {getattr(self, name)!r}")
        if self.quantization not in ("none", "8bit", "4bit"):
            raise ValueError(f"quantization must be none, 8bit or 4bit, got {self.quantization!r}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}")
        if self.llm_threads < 0:
            raise ValueError(f"llm_threads must be >= 0, got {self.llm_threads}")
        if self.llm_process not in ("worker", "inline"):
            raise ValueError(f"llm_process must be worker or inline, got {self.llm_process!r}")
        if self.llm_embedding not in ("q4_0", "q8_0"):
            raise ValueError(f"llm_embedding must be q4_0 or q8_0, got {self.llm_embedding!r}")
        if self.request_timeout <= 0 or self.max_retries < 0:
            raise ValueError("request_timeout must be positive and max_retries not negative")
        if self.hub_access not in ("auto", "online", "offline"):
            raise ValueError(f"hub_access must be auto, online or offline, got {self.hub_access!r}")
        if not 0.0 <= self.review_overlap <= 1.0:  # also refuses nan
            raise ValueError(f"review_overlap must be a share in [0, 1], got {self.review_overlap!r}")
        if not 0 < self.review_lease_seconds < math.inf:
            raise ValueError(f"review_lease_seconds must be a positive, finite number, got {self.review_lease_seconds!r}")
        if self.eval_bootstrap < 0:
            raise ValueError(f"eval_bootstrap must be >= 0, got {self.eval_bootstrap}")
        if not 0 < self.eval_max_zip_mb < math.inf:
            raise ValueError(f"eval_max_zip_mb must be a positive number, got {self.eval_max_zip_mb!r}")
        if self.eval_data_root and not Path(self.eval_data_root).is_dir():
            raise ValueError(f"eval_data_root {self.eval_data_root!r} is not a folder")
        for name in ("max_loaded_models", "max_queue", "concurrency", "cache_max_age", "eval_max_samples",
                     "eval_max_zip_files", "eval_workers", "review_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        parse_allowlist(self.model_allowlist)  # a malformed entry fails at start, not at a visitor's request
        self.image_class_set = _class_set_setting("image_class_set", self.image_class_set, IMAGE_CLASS_SETS)
        self.video_class_set = _class_set_setting("video_class_set", self.video_class_set, VIDEO_CLASS_SETS)
        if not 0.0 <= self.min_face_score <= 1.0:
            raise ValueError(f"min_face_score must be in [0, 1], got {self.min_face_score}")
        for name in ("vote_rate_per_rater", "vote_rate_per_address"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0: no limit), got {getattr(self, name)!r}")
        if self.study_image_max_side < 1:
            raise ValueError(f"study_image_max_side must be at least 1, got {self.study_image_max_side!r}")
        self.study_base_url = _base_url_setting(self.study_base_url)

        self._check_datagen()

    def _check_datagen(self) -> None:
        if not 0.0 <= self.datagen_temperature <= 2.0:
            raise ValueError(f"datagen_temperature must be in [0, 2], got {self.datagen_temperature!r}")
        if not 1 <= self.datagen_concurrency <= 256:
            raise ValueError(f"datagen_concurrency must be 1 to 256, got {self.datagen_concurrency!r}")
        if self.datagen_max_tokens < 16:
            raise ValueError(f"datagen_max_tokens must be at least 16, got {self.datagen_max_tokens!r}")
        if not 0 < self.datagen_timeout < math.inf:
            raise ValueError(f"datagen_timeout must be a positive, finite number of seconds, got {self.datagen_timeout!r}")
        if self.datagen_max_retries < 0:
            raise ValueError(f"datagen_max_retries must not be negative, got {self.datagen_max_retries!r}")
        for name in ("datagen_price_input_per_1k", "datagen_price_output_per_1k"):
            if not 0.0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a non-negative price in USD, got {getattr(self, name)!r}")
        if self.datagen_measure not in ("models", "low-level", "none"):
            raise ValueError(f"datagen_measure must be models, low-level or none, got {self.datagen_measure!r}")
        if self.datagen_captioner not in ("none", "backend"):
            raise ValueError(f"datagen_captioner must be none or backend, got {self.datagen_captioner!r}")

    def study_link_base(self) -> str:
        """Where raters' links point: ``study_base_url``, or this server's own address."""
        if self.study_base_url:
            return self.study_base_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Defaults overridden by ``EMO_<FIELD>`` variables."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f, raw)
        return cls(**values)

    @classmethod
    def from_args(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> "Settings":
        """Environment first, then CLI flags (``--max-upload-mb 10``) on top."""
        base = cls.from_env(env)
        parser = build_parser(base)
        namespace = parser.parse_args(argv)
        return dataclasses.replace(base, **vars(namespace))

    def to_dict(self) -> dict:
        return {f.name: str(v) if isinstance(v := getattr(self, f.name), Path) else v for f in fields(self)}


def _base_url_setting(value: str) -> str:
    """``value`` without a trailing slash, if it is empty or an http(s) address without query or fragment."""
    value = value.strip()
    if not value:
        return ""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"study_base_url must be an http:// or https:// address without ? or #, got {value!r}")
    return value.rstrip("/")


def _class_set_setting(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` in the spelling menus use, if it names one of the ``allowed`` class sets."""
    try:
        key = get_class_set(value).key
    except UnknownClassSetError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if key not in allowed:
        raise ValueError(f"{name}: {value!r} is the {key} class set; choose one of {', '.join(allowed)} "
                         "or a dataset that uses them")
    return class_set_name(value)


def build_parser(defaults: Settings | None = None) -> argparse.ArgumentParser:
    defaults = defaults or Settings()
    parser = argparse.ArgumentParser(description="EmoLens: emotion understanding demo and toolkit")
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (env {ENV_PREFIX}{f.name.upper()})"
        current = getattr(defaults, f.name)
        if _field_type(f) is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=current, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=_field_type(f), default=current, help=help_text)
    return parser


def _field_type(f: dataclasses.Field) -> type:
    # `from __future__ import annotations` turns annotations into strings.
    return {"str": str, "int": int, "float": float, "bool": bool, "Path": Path}[str(f.type)]


field_type = _field_type  # for commands that take some settings as flags of their own (emo_core.datagen)


def _convert(f: dataclasses.Field, raw: str):
    kind = _field_type(f)
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a boolean")
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r}: {exc}") from None
