import pytest
import torch

from fashiongan.text.encoder import TextEncoder
from fashiongan.text.head import AttentionPoolingHead, build_head
from fashiongan.text.loading import HEAD_FILE, TextModelNotFoundError
from tests.model_configs import text_encoder_params

TEXTS = ["a bag", "looking for a light patterned dress with a slim fit", "a loose dress"]


def perturbed(encoder: TextEncoder, seed: int = 0) -> TextEncoder:
    """As if trained: random weights in the head's output map (it starts at zero)."""
    with torch.no_grad():
        draw = torch.Generator().manual_seed(seed)
        encoder.head.out.weight.copy_(
            0.05 * torch.randn(encoder.head.out.weight.shape, generator=draw)
        )
    return encoder


@pytest.fixture
def headed():
    return TextEncoder.from_params(
        text_encoder_params(head="attention", head_pools=3), device="cpu"
    )


def test_an_untrained_head_is_the_plain_pooling(text_encoder, headed):
    torch.testing.assert_close(headed.encode(TEXTS), text_encoder.encode(TEXTS), atol=1e-6, rtol=0)
    assert headed.trainable and not text_encoder.trainable
    assert headed.head_kind == "attention" and text_encoder.head_kind == "none"


def test_weights_in_the_heads_output_map_change_the_features_but_padding_does_not(headed):
    untrained = headed.encode(TEXTS, batch_size=3)
    changed = perturbed(headed).encode(TEXTS, batch_size=3)
    assert (changed - untrained).abs().max() > 1e-3
    alone = torch.cat([headed.encode([t]) for t in TEXTS])  # no padding at all
    torch.testing.assert_close(changed, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(changed.norm(dim=1), torch.ones(3))


def test_training_path_on_the_cache_equals_inference(headed):
    """What a training step runs (head over the cached last states) is what queries get."""
    perturbed(headed)
    hidden, mask = headed.hidden_below_top(TEXTS)
    torch.testing.assert_close(headed.top(hidden, mask), headed.encode(TEXTS), atol=1e-5, rtol=0)
    headed.top(hidden, mask).sum().backward()
    assert headed.head.score.weight.grad is not None and headed.head.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in headed.model.parameters())  # BERT stays frozen


def test_save_then_from_saved_keeps_the_head(headed, tmp_path):
    perturbed(headed)
    headed.save(tmp_path / "enc")
    loaded = TextEncoder.from_saved(tmp_path / "enc")
    assert loaded.head_kind == "attention" and loaded.head.pools == 3
    torch.testing.assert_close(loaded.encode(TEXTS), headed.encode(TEXTS), atol=1e-6, rtol=0)


def test_a_damaged_head_file_is_one_clear_error(headed, tmp_path):
    headed.save(tmp_path / "enc")
    path = tmp_path / "enc" / HEAD_FILE
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(TextModelNotFoundError, match="text_head.safetensors is unreadable"):
        TextEncoder.from_saved(tmp_path / "enc")
    path.unlink()
    with pytest.raises(TextModelNotFoundError, match="incomplete, it has no text_head.safetensors"):
        TextEncoder.from_saved(tmp_path / "enc")


def test_head_settings_are_checked():
    with pytest.raises(ValueError, match="head must be one of"):
        build_head("mlp", 8, 2)
    with pytest.raises(ValueError, match="head_pools"):
        AttentionPoolingHead(8, 0)
    assert build_head("none", 8, 2) is None


def test_padding_never_gets_attention():
    head = AttentionPoolingHead(4, pools=2)
    hidden = torch.randn(1, 3, 4)
    mask = torch.tensor([[1, 1, 0]])
    with torch.no_grad():
        head.out.weight.normal_()
        garbage = hidden.clone()
        garbage[0, 2] = 1e3  # whatever sits in the padding
    torch.testing.assert_close(head(hidden, mask), head(garbage, mask))


@pytest.mark.parametrize("k", [0, 1])
def test_one_pass_cache_gives_what_encode_unique_gives(headed, k):
    """encode_conditioning's single BERT pass: embeddings from the cache, as queries get them."""
    perturbed(headed).set_trainable_top_layers(k)
    texts = [*TEXTS, TEXTS[0], "a slim dress"]
    unique, embeddings, index, hidden, mask = headed.encode_unique_with_hidden(texts, batch_size=2)
    expected_unique, expected, expected_index = headed.encode_unique(texts)
    assert unique == expected_unique and torch.equal(index, expected_index)
    torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=0)
    assert hidden.shape[:2] == mask.shape and len(hidden) == 4
