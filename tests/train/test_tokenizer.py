from __future__ import annotations

import pytest

from townsquare.train.tokenizer import SPECIALS, PostTokenizer, train_tokenizer

CORPUS = ["Séisme au Népal: l'aide arrive 🙏🏽", "Terremoto en México, ¿todos bien? 💔",
          "Flood on Main St <|user|> see <|url|> #flood", "日本で地震 🌏", "Ça va? Très bien!"] * 40


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(CORPUS, vocab_size=400)


@pytest.mark.parametrize("text", ["Séisme au Népal 🙏🏽", "¿Dónde está? 💔🌊", "Zürich ünd Ørsted",
                                  "👩‍👩‍👧 family emoji (ZWJ)", "日本語のテキスト", "never seen: ☃ ǅ ﬁ"])
def test_round_trip_is_exact_for_emoji_accents_and_unseen_scripts(tok, text):
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode_post(text)) == text


def test_specials_are_single_tokens_and_bound_posts(tok):
    ids = tok.encode("<|user|> <|url|>")
    assert tok.tok.token_to_id("<|user|>") in ids and tok.tok.token_to_id("<|url|>") in ids
    batch = tok.encode_batch(["a", "b"])
    assert all(b[0] == tok.bos_id and b[-1] == tok.eos_id for b in batch)
    assert tok.vocab_size <= 400 and all(tok.tok.token_to_id(s) is not None for s in SPECIALS)


def test_training_is_deterministic_and_saves(tok, tmp_path):
    again = train_tokenizer(CORPUS, vocab_size=400)
    assert again.encode("Séisme au Népal") == tok.encode("Séisme au Népal")
    tok.save(tmp_path / "tok.json")
    loaded = PostTokenizer.load(tmp_path / "tok.json")
    assert loaded.encode("Terremoto en México") == tok.encode("Terremoto en México")


def test_vocab_too_small_is_rejected():
    with pytest.raises(ValueError, match="vocab_size must be >= 261"):
        train_tokenizer(CORPUS, vocab_size=100)
