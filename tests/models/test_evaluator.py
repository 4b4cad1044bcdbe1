import pytest
import torch
import torch.nn.functional as F

from fashiongan.datasets import TorchModelDataset
from fashiongan.models.evaluator import EvaluatorCNN
from tests.model_configs import evaluator_config

SMALL = evaluator_config(channels=(8, 16, 16), convs_per_block=(1, 1, 1), feature_dim=32)


def batch(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1
    return images, torch.arange(n) % 10


def test_default_architecture_shapes():
    model = EvaluatorCNN(evaluator_config()).eval()
    images, _ = batch(4)
    assert model.features(images).shape == (4, 256)
    assert model(images).shape == (4, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 64, 128]
    assert model.config.final_size == 3


def test_features_feed_the_head_and_predict_batches():
    model = EvaluatorCNN(SMALL).eval()
    images, _ = batch(10)
    feats, predicted = model.predict(images, batch_size=3)
    assert feats.shape == (10, 32) and predicted.shape == (10,)
    assert torch.allclose(feats, model.features(images), atol=1e-6)
    assert torch.equal(predicted, model(images).argmax(1))
    assert (feats >= 0).all(), "features are post-ReLU"


def test_one_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = EvaluatorCNN(SMALL.model_copy(update={"dropout": 0.0}))
    images, labels = batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    before = F.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    after = F.cross_entropy(model(images), labels)
    assert after.item() < before.item()


def test_bad_inputs_and_configs_are_named():
    model = EvaluatorCNN(SMALL)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model.features(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="same length"):
        evaluator_config(channels=(8, 16), convs_per_block=(1,))
    with pytest.raises(ValueError, match="below one pixel"):
        evaluator_config(channels=(8,) * 5, convs_per_block=(1,) * 5)


def test_round_trip_through_torch_model_dataset(tmp_path):
    model = EvaluatorCNN(SMALL).eval()
    dataset = TorchModelDataset(filepath=str(tmp_path / "evaluator.safetensors"))
    dataset.save(model)
    loaded = dataset.load()
    assert isinstance(loaded, EvaluatorCNN) and loaded.config == SMALL
    images, _ = batch(3)
    assert torch.equal(loaded(images), model(images))
