"""A model cache with the fast tier's table distilled on a few texts' pieces only: the real
recipe (``embed.static``) in seconds instead of the 4 minutes of the whole vocabulary, placed
where the whole table would be, so ``fast_model = "m2v-e5"`` loads it. The e5 export comes from
the user's cache (exported once per machine, as the API tests' ``warm_model_cache`` does)."""
from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest


def tiny_fast_cache(tmp_path_factory, texts: Sequence[str]) -> Path:
    for mod in ("torch", "onnx"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"exporting e5-small-int8 needs {mod}")
    from townsquare.embed.e5onnx import export_e5_int8, tokenizer_for
    from townsquare.embed.static import distill_e5_static, table_path
    from townsquare.settings import Settings

    cache = tmp_path_factory.mktemp("tier-cache")
    e5 = export_e5_int8(Settings().cache_dir)
    (cache / e5.name).symlink_to(e5)
    tok = tokenizer_for()
    pieces = {t for q in (False, True) for s in tok.content_ids(list(texts), q) for t in s}
    tiny = distill_e5_static(tmp_path_factory.mktemp("tiny"), token_ids=sorted(pieces))
    shutil.copy(tiny, table_path(cache))
    return cache
