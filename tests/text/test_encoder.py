import pytest
import torch

from fashiongan.text.encoder import TextEncoder
from fashiongan.text.loading import TextModelNotFoundError, bundled_model_path
from tests.model_configs import text_encoder_params


def _encoder(**changes) -> TextEncoder:
    """The bundled MiniLM as conf/base configures a frozen one, with ``changes``."""
    return TextEncoder.from_params(text_encoder_params(**changes), device="cpu")


def cosine(encoder, a: str, b: str) -> float:
    x, y = encoder.encode([a, b])
    return float(x @ y)


def test_bundled_minilm_loads_offline(text_encoder):
    assert (bundled_model_path() / "config.json").is_file()
    assert text_encoder.dim == 384
    embeddings = text_encoder.encode(["a dark slim dress", "a light wide coat"])
    assert embeddings.shape == (2, 384) and embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(2))
    assert not embeddings.requires_grad


def test_similar_sentences_are_closer(text_encoder):
    # Checked on the real model: 0.43 vs 0.21, 0.86 vs 0.38, 0.77 vs 0.31.
    assert (
        cosine(text_encoder, "trainers", "sneaker")
        > cosine(text_encoder, "trainers", "handbag") + 0.1
    )
    assert (
        cosine(text_encoder, "pants", "trousers") > cosine(text_encoder, "pants", "handbag") + 0.1
    )
    assert cosine(text_encoder, "a jacket", "a coat") > cosine(text_encoder, "a coat", "a sneaker")


def test_batching_and_padding_do_not_change_embeddings(text_encoder):
    texts = ["a bag", "looking for a light patterned dress with a slim fit", "a boot"]
    together = text_encoder.encode(texts, batch_size=3)
    alone = torch.cat([text_encoder.encode([t]) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        text_encoder.encode(texts, batch_size=1), together, atol=1e-5, rtol=0
    )


def test_empty_text_is_refused(text_encoder):
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        text_encoder.encode(["a coat", "   "])
    with pytest.raises(TypeError, match="list of strings"):
        text_encoder.encode("a coat")
    assert text_encoder.encode([]).shape == (0, 384)


def test_long_queries_are_flagged_as_truncated(text_encoder):
    long = "a dark slim patterned dress with long sleeves " * 10
    info = text_encoder.encode_with_info(["a coat", long])
    assert info.truncated.tolist() == [False, True]
    assert info.n_tokens[1] > text_encoder.max_length >= info.n_tokens[0]
    assert text_encoder.tokenize([long]).input_ids.shape[1] == text_encoder.max_length


def test_encode_unique(text_encoder):
    texts = ["a coat", "a bag", "a coat", "a boot", "a bag"]
    unique, embeddings, index = text_encoder.encode_unique(texts)
    assert unique == ["a coat", "a bag", "a boot"]
    assert index.tolist() == [0, 1, 0, 2, 1] and index.dtype == torch.int64
    torch.testing.assert_close(embeddings[index], text_encoder.encode(texts), atol=1e-5, rtol=0)


def test_cls_pooling_differs_from_mean(text_encoder):
    batch = text_encoder.tokenize(["a light wide coat"])
    mean = text_encoder(batch.input_ids, batch.attention_mask)
    text_encoder.pooling = "cls"
    try:
        cls = text_encoder(batch.input_ids, batch.attention_mask)
    finally:
        text_encoder.pooling = "mean"
    assert not torch.allclose(mean, cls)


def test_top_layers_can_be_unfrozen(text_encoder):
    assert not any(p.requires_grad for p in text_encoder.parameters())
    text_encoder.train()
    assert not text_encoder.model.training  # frozen: dropout stays off
    try:
        text_encoder.set_trainable_top_layers(1)
        layers = text_encoder.model.encoder.layer
        assert all(p.requires_grad for p in layers[-1].parameters())
        assert not any(p.requires_grad for p in layers[0].parameters())
        batch = text_encoder.tokenize(["a dark coat", "a light bag"])
        text_encoder(batch.input_ids, batch.attention_mask).sum().backward()
        assert layers[-1].output.dense.weight.grad is not None
        assert layers[0].output.dense.weight.grad is None
        with pytest.raises(ValueError, match="trainable_top_layers"):
            text_encoder.set_trainable_top_layers(7)
    finally:
        text_encoder.set_trainable_top_layers(0)
        text_encoder.zero_grad(set_to_none=True)
        text_encoder.eval()
    assert not any(p.requires_grad for p in text_encoder.parameters())


def test_missing_model_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TextModelNotFoundError, match="does not exist"):
        _encoder(model_name_or_path=str(tmp_path / "no-model"))
    with pytest.raises(TextModelNotFoundError, match="local_files_only"):
        _encoder(model_name_or_path="some-org/bert-that-is-not-cached")
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder.from_params(text_encoder_params().model_copy(update={"pooling": "max"}))


TEXTS = ["a bag", "looking for a light patterned dress with a slim fit", "the same but darker"]


@pytest.mark.parametrize("k,pooling", [(0, "mean"), (1, "mean"), (2, "cls"), (6, "mean")])
def test_top_layers_on_the_cache_equal_the_whole_model(text_encoder, k, pooling):
    """What training runs each step (top k layers on the cached states) is what inference runs."""
    encoder = _encoder(pooling=pooling)
    encoder.set_trainable_top_layers(k)
    hidden, mask = encoder.hidden_below_top(TEXTS, batch_size=2)
    assert hidden.shape == (3, mask.shape[1], 384) and mask.sum(1).min() >= 3
    alone = torch.cat([encoder.encode([t]) for t in TEXTS])  # no padding at all
    torch.testing.assert_close(encoder.top(hidden, mask), alone, atol=1e-5, rtol=0)
    short = slice(0, int(mask[0].sum()))  # training trims the padding a batch shares
    torch.testing.assert_close(
        encoder.top(hidden[:1, short], mask[:1, short]), alone[:1], atol=1e-5, rtol=0
    )
    assert len(encoder.top_layers) == k


def test_gradients_reach_the_top_layers_only(text_encoder):
    encoder = _encoder(trainable_top_layers=2)
    hidden, mask = encoder.hidden_below_top(TEXTS)
    encoder.top(hidden, mask).sum().backward()
    layers = encoder.model.encoder.layer
    assert all(p.grad is not None for layer in layers[-2:] for p in layer.parameters())
    assert all(p.grad is None for layer in layers[:-2] for p in layer.parameters())
    assert not hidden.requires_grad  # the cache is a constant


def test_save_then_from_saved_encodes_the_same(text_encoder, tmp_path):
    from transformers import AutoModel

    encoder = _encoder(pooling="cls")
    encoder.set_trainable_top_layers(1)
    untuned = encoder.encode(TEXTS)
    with torch.no_grad():  # as if tuned: the copy must keep this change
        weight = encoder.model.encoder.layer[-1].output.dense.weight
        weight.add_(0.1 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    encoder.save(tmp_path / "enc")
    loaded = TextEncoder.from_saved(tmp_path / "enc")
    assert loaded.pooling == "cls" and loaded.trainable_top_layers == 0
    torch.testing.assert_close(loaded.encode(TEXTS), encoder.encode(TEXTS), atol=1e-6, rtol=0)
    assert (loaded.encode(TEXTS) - untuned).abs().max() > 1e-3
    assert AutoModel.from_pretrained(tmp_path / "enc").config.model_type == "bert"
    with pytest.raises(TextModelNotFoundError, match="fashiongan_text_encoder.json"):
        TextEncoder.from_saved(text_encoder.model_name_or_path)
