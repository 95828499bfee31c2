"""A real OpenAI-compatible server for tests: ``transformers serve`` on the tiny LLaVA, on CPU, started
once per test session on 127.0.0.1. tests/conftest.py registers this module as a plugin, so every test
module shares the one server (a fixture imported into two modules would start it once per module):

    def test_x(served_model):
        base_url, model = served_model
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.app_process import free_port
from tests.tiny_models import tiny_model_dir

SERVER_START_TIMEOUT_S = 90


@pytest.fixture(scope="session")
def served_model(tmp_path_factory):
    """(base URL, model name) of ``transformers serve`` running the tiny LLaVA on CPU."""
    model_dir = tiny_model_dir("llava")
    home = tmp_path_factory.mktemp("serve-home")
    # /v1/models answers 500 unless the hub cache folder exists (transformers 5.23)
    (home / ".cache" / "huggingface" / "hub").mkdir(parents=True)
    env = dict(os.environ, HOME=str(home), HF_HOME=str(home / ".cache" / "huggingface"), HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1")
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    log = (home / "serve.log").open("w")
    server = subprocess.Popen(
        [str(cli), "serve", str(model_dir), "--device", "cpu", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"transformers serve exited: {(home / 'serve.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not ready in {SERVER_START_TIMEOUT_S} s")
            time.sleep(0.5)
        yield base_url, str(model_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
