"""Humour captions (EmoVIT Sec. 4.6): K humorous captions for an image, from any backend, streamed.

- ``captions``: the task (``humour_captions_stream``, ``humour_captions``, ``HumourResult``);
- ``cues``: the measured cues and the words read in the image as prompt phrases;
- ``ocr``: the words written in an image (RapidOCR's PP-OCRv6, shipped in its wheel);
- ``checks``: what a caption must pass, and when two captions are one joke;
- ``batch``: many images into a CSV, one row per caption with its provenance, resumable;
  ``python -m emo_core.humour IMAGES --out captions.csv [--n 3] [--backend B --model M]``.

Importing this package loads no model.
"""

from .captions import (DEFAULT_TEMPERATURE, MAX_CAPTIONS, Caption, HumourResult, RejectedCaption, humour_captions,
                       humour_captions_stream, prompt_version)

__all__ = ["DEFAULT_TEMPERATURE", "MAX_CAPTIONS", "Caption", "HumourResult", "RejectedCaption", "humour_captions", "humour_captions_stream",
           "prompt_version"]
