import pytest
import torch
import torch.nn.functional as F

from fashiongan.datasets.safetensors import load_module, save_module
from fashiongan.models.classifier import ProductClassifier
from tests.model_configs import classifier_config

SMALL = {"cnn_channels": (4, 8, 8), "embedding_dim": 8, "lstm_hidden": 6, "fusion_hidden": 16}


def _batch(n: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=g) * 2 - 1
    lengths = torch.randint(1, 7, (n,), generator=g)
    tokens = torch.randint(2, 30, (n, 6), generator=g)
    tokens[torch.arange(6)[None, :] >= lengths[:, None]] = 0  # right padding
    labels = torch.randint(0, 10, (n,), generator=g)
    return images, tokens, lengths, labels


@pytest.mark.parametrize("modality", ["multimodal", "image", "text"])
def test_shapes_and_which_branches_exist(modality):
    model = ProductClassifier(classifier_config(modality=modality, vocab_size=30, **SMALL)).eval()
    images, tokens, lengths, _ = _batch(5)
    logits = model(images, tokens, lengths)
    assert logits.shape == (5, 10)
    assert hasattr(model, "image") == (modality != "text")
    assert hasattr(model, "text") == (modality != "image")
    assert model.head[0].in_features == {"multimodal": 8 + 6, "image": 8, "text": 6}[modality]
    probabilities = model.predict_proba(images, tokens, lengths)
    assert torch.allclose(probabilities.sum(1), torch.ones(5))


def test_ablations_ignore_the_other_modality():
    images, tokens, lengths, _ = _batch(4)
    image_only = ProductClassifier(classifier_config(modality="image", vocab_size=30, **SMALL))
    text_only = ProductClassifier(classifier_config(modality="text", vocab_size=30, **SMALL))
    image_only.eval(), text_only.eval()
    assert torch.equal(image_only(images), image_only(images, tokens, lengths))
    assert torch.equal(text_only(None, tokens, lengths), text_only(-images, tokens, lengths))
    with pytest.raises(ValueError, match="needs images"):
        image_only(None, tokens, lengths)
    with pytest.raises(ValueError, match="needs tokens and lengths"):
        text_only(images)


def test_padding_does_not_change_the_text_features():
    model = ProductClassifier(classifier_config(modality="text", vocab_size=30, **SMALL)).eval()
    tokens = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0]])
    length = torch.tensor([3])
    assert torch.allclose(model(None, tokens, length), model(None, padded, length), atol=1e-6)


@pytest.mark.parametrize("modality", ["multimodal", "image", "text"])
def test_one_step_lowers_the_loss_on_a_fixed_batch(modality):
    torch.manual_seed(0)
    model = ProductClassifier(
        classifier_config(modality=modality, vocab_size=30, dropout=0.0, **SMALL)
    )
    images, tokens, lengths, labels = _batch(16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    before = F.cross_entropy(model(images, tokens, lengths), labels)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    after = F.cross_entropy(model(images, tokens, lengths), labels)
    assert after.item() < before.item()


def test_saved_and_reloaded_like_every_model(tmp_path):
    model = ProductClassifier(classifier_config(vocab_size=30, **SMALL)).eval()
    save_module(model, tmp_path / "m.safetensors")
    loaded = load_module(tmp_path / "m.safetensors")
    images, tokens, lengths, _ = _batch(3)
    assert loaded.config == model.config
    assert torch.allclose(loaded(images, tokens, lengths), model(images, tokens, lengths))


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="torchvision"):
        classifier_config(image_branch="efficientnet_b0")
    with pytest.raises(ValueError, match="modality must be one of"):
        classifier_config(modality="audio")
