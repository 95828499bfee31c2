# Hugging Face Space (sdk: docker) or any container host: the same set-up script as the README.
# mediapipe's and fer's stale pins need `pip install --no-deps`, which a plain-pip Space cannot express.
# scripts/check_space_build.sh replays these steps in a clean Debian root (no Docker needed); it only
# understands the instructions used here (see scripts/dockerfile_steps.py).
FROM python:3.11-slim-bookworm

# llama-cpp-python publishes no Linux wheel, so pip compiles llama.cpp: it needs a C/C++ toolchain
# (cmake and ninja come from PyPI as build requirements). The other wheels bundle their own libraries.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

# Hugging Face runs Docker Spaces as uid 1000; the app folder is created here, owned by that user,
# so no builder's rules about who owns a directory WORKDIR creates matter.
RUN useradd --create-home --uid 1000 user \
 && install -d -o user -g user /home/user/app
USER user
# the user cache (where the set-up puts the language model's file) must be the same at build and run time
ENV HOME=/home/user
WORKDIR /home/user/app
COPY --chown=user . .
# pip's cache would double the image (torch alone is hundreds of MB); llama.cpp is compiled once here.
ENV PIP_NO_CACHE_DIR=1
RUN bash scripts/setup.sh

ENV EMO_HOST=0.0.0.0 EMO_PORT=7860 GRADIO_ANALYTICS_ENABLED=False
EXPOSE 7860
CMD [".venv/bin/python", "app.py"]
