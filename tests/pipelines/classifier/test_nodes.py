import numpy as np
import pandas as pd
import pytest
import torch

from fashiongan.pipelines.classifier.nodes import evaluate_classifiers

N_TEST = 40


class ReadsTheLabel(torch.nn.Module):
    """A stand-in classifier: the true label is pixel (0, 0); it errs on the labels it is told."""

    def __init__(self, wrong_on: set[int]) -> None:
        super().__init__()
        self.wrong_on = torch.tensor(sorted(wrong_on), dtype=torch.int64)

    def forward(self, images, tokens, lengths):
        labels = images[:, 0, 0, 0].long()
        predicted = torch.where(torch.isin(labels, self.wrong_on), (labels + 1) % 10, labels)
        return torch.nn.functional.one_hot(predicted, 10).float()


def _test_split() -> tuple[dict, dict, pd.DataFrame]:
    labels = torch.arange(N_TEST) % 10
    images = torch.zeros(N_TEST, 1, 28, 28)
    images[:, 0, 0, 0] = labels.float()
    model_input = {"test_images": images, "test_labels": labels}
    text_input = {
        "test_tokens": torch.ones(N_TEST, 4, dtype=torch.int64),
        "test_lengths": torch.full((N_TEST,), 4),
        "test_labels": labels,
    }
    kinds = np.where(np.arange(N_TEST) < N_TEST // 2, "clean", "misleading")
    titles = pd.DataFrame({"split": "test", "index": np.arange(N_TEST), "noise_kind": kinds})
    return model_input, text_input, titles


@pytest.mark.parametrize(
    ("multimodal_wrong_on", "beats_both"),
    [(set(), True), ({0, 1, 2}, False), ({0}, False)],  # ({0}: ties the image model, not above)
)
def test_fusion_beats_both_is_the_comparison_of_the_reported_scores(
    multimodal_wrong_on, beats_both
):
    model_input, text_input, titles = _test_split()
    metrics = evaluate_classifiers(
        model_input,
        text_input,
        titles,
        multimodal=ReadsTheLabel(multimodal_wrong_on),
        image=ReadsTheLabel({0}),
        text=ReadsTheLabel({0, 1}),
    )
    models = metrics["models"]
    assert models["image"]["accuracy"] == pytest.approx(0.9)
    assert models["text"]["accuracy"] == pytest.approx(0.8)
    assert models["multimodal"]["accuracy"] == pytest.approx(1 - len(multimodal_wrong_on) / 10)
    assert metrics["fusion_beats_both"] is beats_both
    assert metrics["title_outcomes"]["clean"] == 0.5
    assert sum(map(sum, models["text"]["confusion"])) == N_TEST
