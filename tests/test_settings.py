"""``Settings.load``: flags over the environment over the config file over the defaults; bad
config files say what is wrong; settings travel to worker processes intact."""
from __future__ import annotations

from pathlib import Path

import pytest

from townsquare.settings import DB_FILE, LLMSettings, Settings, SettingsError, dist_env

URL_FLAG, URL_ENV, URL_FILE = ("postgresql://flag/db", "postgresql://env/db",
                               "postgresql://file/db")


@pytest.fixture
def config(tmp_path) -> Path:
    f = tmp_path / "conf.toml"
    f.write_text(f'home = "{tmp_path / "from-file"}"\nstore_url = "{URL_FILE}"\n'
                 'embed_model = "minilm-l6-int8"\n'
                 '[llm]\nbackend = "openai"\nmodel = "file-model"\n'
                 'base_url = "http://file/v1"\n')
    return f


def test_defaults_without_flags_environment_or_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                     # no ./.townsquare/townsquare.toml here
    s = Settings.load(environ={})
    assert s == Settings()
    assert (s.home, s.store_url, s.server_mode, s.embed_model) == (Path(".townsquare"), None,
                                                                   False, None)
    assert s.db_target == Path(".townsquare") / DB_FILE and s.llm == LLMSettings()


def test_the_config_file_over_the_defaults(config, tmp_path):
    s = Settings.load(config_file=config, environ={})
    assert s.home == tmp_path / "from-file" and s.store_url == URL_FILE
    assert s.db_target == URL_FILE and s.server_mode and s.embed_model == "minilm-l6-int8"
    assert (s.llm.backend, s.llm.model, s.llm.base_url) == ("openai", "file-model",
                                                            "http://file/v1")


def test_the_environment_over_the_config_file(config, tmp_path):
    env = {"TOWNSQUARE_HOME": str(tmp_path / "from-env"), "TOWNSQUARE_STORE": URL_ENV,
           "TOWNSQUARE_LLM": "local", "TOWNSQUARE_LLM_GGUF": "/m.gguf",
           "TOWNSQUARE_EMBED_MODEL": "e5-small-int8"}
    s = Settings.load(config_file=config, environ=env)
    assert s.home == tmp_path / "from-env" and s.store_url == URL_ENV
    assert s.embed_model == "e5-small-int8"
    assert (s.llm.backend, s.llm.model, s.llm.gguf) == ("local", "file-model", "/m.gguf")


def test_flags_over_the_environment(config, tmp_path):
    env = {"TOWNSQUARE_HOME": str(tmp_path / "from-env"), "TOWNSQUARE_STORE": URL_ENV,
           "TOWNSQUARE_LLM": "local"}
    s = Settings.load(home=tmp_path / "from-flag", store_url=URL_FLAG, config_file=config,
                      llm={"backend": "extractive"}, embed_model="e5-small-q4", environ=env)
    assert s.home == tmp_path / "from-flag" and s.store_url == URL_FLAG
    assert s.llm.backend == "extractive" and s.embed_model == "e5-small-q4"


def test_the_config_file_from_the_environment_and_from_the_home(config, tmp_path):
    assert Settings.load(environ={"TOWNSQUARE_CONFIG": str(config)}).store_url == URL_FILE
    home = tmp_path / "h"
    home.mkdir()
    (home / "townsquare.toml").write_text(f'store_url = "{URL_FILE}"\n')
    assert Settings.load(home=home, environ={}).store_url == URL_FILE
    assert Settings.load(environ={"TOWNSQUARE_HOME": str(home)}).store_url == URL_FILE


def test_the_openai_key_falls_back_to_openai_api_key():
    assert Settings.load(environ={"OPENAI_API_KEY": "sk-a"}).llm.api_key == "sk-a"
    both = {"OPENAI_API_KEY": "sk-a", "TOWNSQUARE_LLM_API_KEY": "sk-b"}
    assert Settings.load(environ=both).llm.api_key == "sk-b"
    assert "sk-b" not in repr(Settings.load(environ=both))          # never printed


@pytest.mark.parametrize("text, message", [
    ("home = \n", "not valid TOML"),
    ('colour = "blue"\n', "unknown setting(s) colour"),
    ('llm = "openai"\n', "[llm] must be a table"),
    ('[llm]\ntemperature = 1\n', "unknown [llm] setting(s) temperature"),
    ('store_url = "mysql://x"\n', "expected a postgresql:// URL"),
])
def test_a_bad_config_file_says_what_is_wrong(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(SettingsError) as e:
        Settings.load(config_file=f, environ={})
    assert message in str(e.value)


def test_a_missing_config_file_and_a_bad_store_url_are_errors(tmp_path):
    with pytest.raises(SettingsError, match="config file not found"):
        Settings.load(config_file=tmp_path / "nope.toml", environ={})
    with pytest.raises(SettingsError, match="postgresql://"):
        Settings.load(environ={"TOWNSQUARE_STORE": "sqlite:///x"})


def test_with_home_and_the_folders_under_it(tmp_path):
    s = Settings.load(home=tmp_path / "a", environ={}).with_home(tmp_path / "b")
    assert s.home == tmp_path / "b" and s.db_target == tmp_path / "b" / DB_FILE
    assert s.with_home(None) is s
    assert (s.models_dir, s.checkpoint_file, s.tokenizer_file) == (
        tmp_path / "b" / "models", tmp_path / "b" / "model" / "ckpt.pt",
        tmp_path / "b" / "corpus" / "data" / "tokenizer.json")


def test_backend_options_go_only_to_the_backends_that_take_them():
    llm = LLMSettings(backend="local", model="smollm2-135m", base_url="http://h/v1",
                      api_key="k", gguf="/m.gguf")
    assert llm.options("local") == {"model": "smollm2-135m", "model_path": "/m.gguf"}
    assert llm.options("openai") == {"model": "smollm2-135m", "base_url": "http://h/v1",
                                     "api_key": "k"}
    assert llm.options("extractive") == {} and llm.options("trained") == {}
    assert llm.with_flags(backend="trained", model="ck.pt").options("trained") == {
        "model": "ck.pt"}
    assert llm.with_flags(model=None) == llm


def test_settings_travel_to_worker_processes_as_json(tmp_path):
    s = Settings.load(home=tmp_path, store_url=URL_FLAG, llm={"backend": "openai",
                                                               "api_key": "sk-x"}, environ={})
    payload = s.to_json(embed=True, background_share=0.2, auth=False)
    back, extra = Settings.for_worker({"TOWNSQUARE_SERVE": payload})
    assert back == s and back.llm.api_key == "sk-x"
    assert extra == {"embed": True, "background_share": 0.2, "auth": False}
    with pytest.raises(RuntimeError, match="townsquare serve --workers"):
        Settings.for_worker({})


def test_dist_env_reads_torchrun_and_rejects_nonsense():
    assert dist_env({}) == dist_env({"RANK": "0"})
    assert (dist_env({}).rank, dist_env({}).world_size) == (0, 1)
    with pytest.raises(SettingsError, match="torchrun"):
        dist_env({"RANK": "one"})
