"""The weight average of `train.ema_decay`: its arithmetic and its place in training."""

from __future__ import annotations

import torch

from scaledl.train.ema import WeightAverage


def test_average_moves_toward_the_weights_with_a_ramped_decay() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 3))  # BatchNorm statistics and its integer step counter move
    average.update(model)
    decay = min(0.9, 2 / 11)  # the first update's ramped decay
    now = model.state_dict()
    expected = start["0.weight"] * decay + now["0.weight"] * (1 - decay)
    assert torch.allclose(average.weights["0.weight"], expected)
    assert average.weights["1.num_batches_tracked"] == now["1.num_batches_tracked"] == 1


def test_applied_swaps_the_average_in_and_back() -> None:
    model = torch.nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.5)
    own = model.weight.detach().clone()
    average.weights["weight"].fill_(7.0)
    with average.applied(model):
        assert torch.equal(model.weight, torch.full_like(own, 7.0))
    assert torch.equal(model.weight, own)


def test_state_round_trips_through_a_checkpoint() -> None:
    model = torch.nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.99)
    for _ in range(3):
        average.update(model)
    copy = WeightAverage(torch.nn.Linear(3, 2), decay=0.99)
    copy.load(average.state())
    assert copy.updates == 3
    assert all(torch.equal(copy.weights[k], v) for k, v in average.weights.items())
