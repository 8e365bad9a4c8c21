"""Generation backends from the settings, the caller's flags over them."""
from __future__ import annotations

import pytest

from townsquare.llm import BackendError
from townsquare.posts import Post
from townsquare.services.indexes import build_engine
from townsquare.services.summaries import default_backend, get_llm, summarizer
from townsquare.settings import LLMSettings, Settings
from townsquare.store import open_store
from townsquare.store.base import Stored


def test_the_backend_from_the_flag_else_the_settings():
    s = Settings(llm=LLMSettings(backend="extractive"))
    assert get_llm(s).model == "extractive"
    assert get_llm(Settings(), "extractive").model == "extractive"


def test_with_no_backend_named_the_default_is_extractive_and_a_model_means_local():
    assert get_llm(Settings()).model == "extractive"
    assert default_backend(Settings()) == "extractive"
    assert default_backend(Settings(), "smollm2-360m") == "local"            # --model alone
    assert default_backend(Settings(llm=LLMSettings(model="smollm2-360m"))) == "local"
    assert default_backend(Settings(llm=LLMSettings(gguf="/m/x.gguf"))) == "local"


def test_openai_options_come_from_the_settings_and_flags_win():
    s = Settings(llm=LLMSettings(backend="local", model="m-settings",
                                 base_url="http://settings:1/v1", api_key="k"))
    b = get_llm(s, "openai")
    assert (b.base_url, b.model) == ("http://settings:1/v1", "m-settings")
    b = get_llm(s, "openai", model="m-flag", base_url=None)          # None: not given
    assert (b.base_url, b.model) == ("http://settings:1/v1", "m-flag")


def test_options_of_another_backend_do_not_reach_extractive():
    s = Settings(llm=LLMSettings(backend="openai", model="m", base_url="http://h:1/v1"))
    assert get_llm(s, "extractive").model == "extractive"


def test_trained_defaults_to_the_checkpoint_townsquare_train_writes(tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(BackendError, match=str(tmp_path / "model" / "ckpt.pt")):
        get_llm(Settings(home=tmp_path), "trained")


def test_summarizer_verifies_with_the_engines_embedder(tmp_path):
    with open_store(tmp_path) as store:
        store.write_batch([Stored(Post(id=1_500_000_000_000_000_000 + i,
                                       text=f"The bridge on route {i} is closed after the flood.",
                                       created_at=1_600_000_000_000 + i, author_handle=f"a{i}",
                                       source="t").normalized()) for i in range(3)], [])
        engine = build_engine(store, Settings(home=tmp_path))
        summ = summarizer(store, get_llm(Settings(), "extractive"), engine)
        assert summ.embedder is engine.embedder is None
        result = summ.run(query="bridge", engine=engine)
        assert result.model == "extractive" and result.sentences
