"""The generator's exponential moving average, by hand on a tiny module."""

import pytest
import torch
from torch import nn

from fashiongan.training.ema import averaging_hook, generator_average, warmed_up_decay


def test_off_is_none():
    assert generator_average(nn.Linear(2, 2), None) is None
    assert generator_average(nn.Linear(2, 2), 0.0) is None


def test_the_decay_warms_up_then_holds():
    assert warmed_up_decay(0.999, 0) == pytest.approx(1 / 10)
    assert warmed_up_decay(0.5, 8) == 0.5  # 9/18: the configured decay from here on
    assert warmed_up_decay(0.999, 1686) == pytest.approx(1687 / 1696)  # 2 epochs: still warming
    assert warmed_up_decay(0.999, 100_000) == 0.999


@pytest.mark.parametrize("warmup", [3, 4, 10])
def test_while_warming_up_step_t_weighs_like_t_to_the_warmup_minus_2(warmup):
    net = nn.Linear(1, 1, bias=False)
    average = generator_average(net, 0.99999, warmup)  # the decay cap never binds here
    update = averaging_hook(average, net)
    steps = 2000
    for step in range(1, steps + 1):
        with torch.no_grad():
            net.weight.fill_(step)  # the weight is the step number: the average is its mean
        update(step)
    power = warmup - 2  # weights ~ t**power on [0, n]: their mean is n (power + 1) / (power + 2)
    expected = steps * (power + 1) / (power + 2)
    assert average.module.weight.item() == pytest.approx(expected, rel=0.01)


def test_the_average_by_hand_weights_and_batchnorm_statistics():
    net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    average = generator_average(net, 0.5)
    update = averaging_hook(average, net)
    seen = []
    for value in (1.0, 3.0, 5.0):
        with torch.no_grad():
            net[0].weight.fill_(value)
        net(torch.tensor([[0.0], [2.0]]))  # a training batch: BatchNorm counts it
        update(0)
        seen.append(average.module[0].weight.item())
    # 1st: a copy. 2nd: decay min(0.5, 2/11): 1 + (9/11)(3 − 1). 3rd: min(0.5, 3/12) = 1/4.
    second = 1 + (9 / 11) * 2
    assert seen == pytest.approx([1.0, second, second + (3 / 4) * (5 - second)])
    assert average.module[1].num_batches_tracked.item() == 3  # integer buffers: copied
    assert not torch.equal(average.module[1].running_mean, net[1].running_mean)  # averaged
