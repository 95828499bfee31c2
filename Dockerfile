# Hugging Face Space (sdk: docker) or any container host: the same set-up script as the README.
# mediapipe's and fer's stale pins need `pip install --no-deps`, which a plain-pip Space cannot express.
FROM python:3.11-slim
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app
COPY --chown=user . .
USER user
RUN bash scripts/setup.sh
ENV EMO_HOST=0.0.0.0 EMO_PORT=7860 GRADIO_ANALYTICS_ENABLED=False
EXPOSE 7860
CMD [".venv/bin/python", "app.py"]
