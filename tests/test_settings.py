"""Settings: defaults, environment variables, CLI flags, validation."""

from pathlib import Path

import pytest

from emo_core import Settings


def test_defaults_run_offline():
    settings = Settings()
    assert settings.backend == "offline" and settings.port == 7860 and settings.data_dir == Path("data")


def test_the_language_model_runs_in_its_own_process_by_default(tmp_path):
    from emo_core.llm.lm_worker import WorkerLM
    from emo_core.llm.small_lm import SmallLM, get_small_lm

    assert (Settings().llm_process, Settings().llm_embedding) == ("worker", "q4_0")
    assert isinstance(get_small_lm(Settings(), cache_dir=tmp_path), WorkerLM)  # created, not started
    inline = get_small_lm(Settings(llm_process="inline", llm_embedding="q8_0", llm_threads=1), cache_dir=tmp_path)
    assert isinstance(inline, SmallLM) and (inline.embedding, inline.n_threads) == ("q8_0", 1)
    assert get_small_lm(Settings(llm_process="inline", llm_embedding="q8_0", llm_threads=1), cache_dir=tmp_path) is inline


def test_env_then_flags():
    env = {"EMO_PORT": "9000", "EMO_BACKEND": "offline", "EMO_MAX_UPLOAD_MB": "3.5", "EMO_PRELOAD": "false"}
    settings = Settings.from_env(env)
    assert (settings.port, settings.max_upload_mb, settings.preload) == (9000, 3.5, False)
    settings = Settings.from_args(["--port", "9100", "--preload", "--data-dir", "elsewhere"], env=env)
    assert (settings.port, settings.preload, settings.data_dir) == (9100, True, Path("elsewhere"))


@pytest.mark.parametrize("env", [{"EMO_PORT": "many"}, {"EMO_PRELOAD": "perhaps"}, {"EMO_BACKEND": "magic"},
                                 {"EMO_MAX_FACES": "0"}, {"EMO_MIN_FACE_SCORE": "2"}, {"EMO_LLM_PROCESS": "thread"},
                                 {"EMO_LLM_EMBEDDING": "q2_k"}, {"EMO_REVIEW_OVERLAP": "1.5"},
                                 {"EMO_REVIEW_OVERLAP": "nan"}, {"EMO_REVIEW_LEASE_SECONDS": "0"},
                                 {"EMO_REVIEW_LEASE_SECONDS": "inf"}, {"EMO_REVIEW_CONCURRENCY": "0"}])
def test_bad_values_are_refused_with_the_variable_named(env):
    with pytest.raises(ValueError) as error:
        Settings.from_env(env)
    assert any(key in str(error.value) or key.removeprefix("EMO_").lower() in str(error.value) or "backend" in
               str(error.value) for key in env)
