"""EmoLens: the Gradio app. ``build_demo(settings)`` assembles the tabs; nothing runs on import.

    python app.py                      # offline default on http://127.0.0.1:7860
    python app.py --port 8000 --help   # every setting, also readable from EMO_* env variables
    emolens --port 8000                # the same, as the console script of `pip install -e .`
"""

from __future__ import annotations

import logging
import os
import threading

# gradio looks up its own and the hub's hosts at launch unless told not to; we run offline.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from emo_core import Settings, warm_up  # noqa: E402
from ui import image_tab, video_tab  # noqa: E402

TITLE = "EmoLens: emotion understanding (EmoVIT + Emotion-LLaMA)"


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or Settings.from_env()
    with gr.Blocks(title="EmoLens", analytics_enabled=False) as demo:
        gr.Markdown(
            f"# {TITLE}\n"
            f"Backend: **{settings.backend}**"
            + (f" · model `{settings.model}`" if settings.model else "")
            + (" · runs on CPU with models shipped in PyPI packages; where it has no model for a "
               "question it says so and shows the cues it measured." if settings.backend == "offline" else "")
        )
        with gr.Tabs():
            image_tab.build(settings)
            video_tab.build(settings)
    return demo


def launch(settings: Settings) -> None:
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    if settings.preload:
        threading.Thread(target=warm_up, args=(settings,), name="warm-up", daemon=True).start()
    demo = build_demo(settings)
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        max_file_size=int(settings.max_upload_mb * 1_000_000),
        footer_links=["api", "settings"],
    )


def main(argv: list[str] | None = None) -> None:
    """The command line: settings from EMO_* variables and flags, then serve until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    launch(Settings.from_args(argv))


if __name__ == "__main__":
    main()
