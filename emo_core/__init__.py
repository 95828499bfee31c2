"""emo_core: the inference library behind the EmoLens app (no gradio in here).

    from emo_core import analyze_image
    result = analyze_image("photo.jpg", class_set="mikels8")
    print(result.answer)          # "Predicted emotion: amusement. Reason: ..."
    print(result.distribution)    # {"amusement": 0.41, ...}

Importing this package loads no model; models load on first use.
"""

from .backends import BACKENDS, Backend, backend_lease, get_backend
from .errors import (BackendError, CapabilityError, EmoError, InputTooLargeError, InvalidInputError,
                     UnknownClassSetError, redact_paths)
from .labels import (CLASS_SETS, DATASET_NAMES, IMAGE_CLASS_SETS, VIDEO_CLASS_SETS, ClassSet, ClassSetChoice,
                     class_set_menu, get_class_set, resolve_class_set)
from .parsing import ParsedAnswer, format_prediction, parse_prediction
from .image_io import LoadedImage, load_image
from .settings import Settings
from .model_choice import ModelChoiceError, ModelOption, choose_model, configured_option, model_options
from .tasks.image_emotion import (BatchRow, FaceResult, ImageEmotionResult, analyze_image, analyze_image_stream,
                                  analyze_images, rows_to_csv)
from .tasks.video_emotion import VideoEmotionResult, analyze_video, analyze_video_stream
from .humour import HumourResult, humour_captions, humour_captions_stream
from .warmup import warm_up

__all__ = [
    "ModelChoiceError", "ModelOption", "backend_lease", "choose_model", "configured_option", "model_options",
    "redact_paths",
    "BACKENDS", "Backend", "BackendError", "BatchRow", "CLASS_SETS", "CapabilityError", "ClassSet", "EmoError",
    "FaceResult", "IMAGE_CLASS_SETS", "ImageEmotionResult", "InputTooLargeError", "InvalidInputError",
    "ParsedAnswer", "Settings", "UnknownClassSetError", "VIDEO_CLASS_SETS", "analyze_image", "analyze_images",
    "LoadedImage", "format_prediction", "get_backend", "get_class_set", "load_image", "parse_prediction",
    "rows_to_csv", "warm_up", "VideoEmotionResult", "analyze_video", "analyze_video_stream", "analyze_image_stream",
    "DATASET_NAMES", "ClassSetChoice", "class_set_menu", "resolve_class_set",
    "HumourResult", "humour_captions", "humour_captions_stream",
]
