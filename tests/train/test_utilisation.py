"""Utilisation figures: exact FLOP counts on known layers, the cached peak probe, sane ranges."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from scaledl.train.utilisation import PEAK_CACHE, count_flops, describe, measured_peak, summarize


def test_linear_flops_are_exact() -> None:
    layer = torch.nn.Linear(10, 4)
    flops = count_flops(layer, torch.randn(5, 10))
    # forward: 2·in·out per sample; backward: the weight gradient only (the input needs none)
    assert flops.forward_per_sample == 2 * 10 * 4
    assert flops.training_per_sample == 2 * (2 * 10 * 4)


def test_two_layer_flops_count_the_backward_pass() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    flops = count_flops(model, torch.randn(3, 10))
    forward = 2 * 10 * 8 + 2 * 8 * 4
    # backward: layer 2's input and weight gradients, layer 1's weight gradient
    backward = 2 * 8 * 4 + 2 * 8 * 4 + 2 * 10 * 8
    assert flops.forward_per_sample == forward
    assert flops.training_per_sample == forward + backward


def test_counting_leaves_the_model_untouched() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.BatchNorm1d(4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_flops(model, torch.randn(4, 6))
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_peak_is_probed_once_then_read_from_the_cache(tmp_path: Path) -> None:
    cpu = torch.device("cpu")
    first = measured_peak(cpu, torch.float32, cache_dir=tmp_path)
    assert 1e8 < first < 1e15  # 0.1 GFLOP/s .. 1 PFLOP/s
    cache = tmp_path / PEAK_CACHE
    [(key, entry)] = json.loads(cache.read_text()).items()
    assert entry["flops"] == first
    assert measured_peak(cpu, torch.float32, cache_dir=tmp_path) == first  # no new probe
    # a day later it is probed again, and the best probe is kept (load only lowers it)
    cache.write_text(json.dumps({key: {"flops": 1e15, "probed": time.time() - 2 * 86400}}))
    assert measured_peak(cpu, torch.float32, cache_dir=tmp_path) == 1e15
    assert json.loads(cache.read_text())[key]["probed"] > time.time() - 60
    cache.write_text("{not json")  # a corrupt cache is probed again
    assert measured_peak(cpu, torch.float32, cache_dir=tmp_path) > 0


def test_summary_of_the_clocks() -> None:
    from scaledl.train.utilisation import FlopCount

    # two ranks, 10 s of steps each, 2 s of them waiting, 1000 samples each
    figures = summarize([4.0, 20.0, 2000.0, 20.0], 2, FlopCount(1e6, 3e6), 1e9, "fp32")
    assert figures["samples_per_second"] == 200.0
    assert figures["data_wait_fraction"] == pytest.approx(0.2)
    assert figures["achieved_flops_per_second"] == 6e8
    assert figures["peak_flops_per_second"] == 2e9
    assert figures["utilisation"] == pytest.approx(0.3)
    assert summarize([0.0, 0.0, 0.0, 0.0], 1, None, None, "fp32") == {}
    assert "no step was measured" in describe({})


def test_a_one_step_run_reports_no_figures() -> None:
    from scaledl.data.dataset import DataSplits
    from scaledl.modalities import load_splits
    from scaledl.preprocess import fit_preprocessing
    from scaledl.recipe import validate_recipe
    from scaledl.train.loop import Trainer
    from tests.conftest import quick_recipe

    recipe = validate_recipe(quick_recipe(train={"epochs": 1, "batch_size": 4096}))
    splits: DataSplits = load_splits(recipe.data, seed=0, task="classification")
    prep = fit_preprocessing(splits)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    result = Trainer(model, splits, recipe.train, prep).fit()
    assert result.extra["utilisation"] == {}


def test_training_reports_utilisation_in_sane_ranges(digits_package: Path) -> None:
    from scaledl.package import open_package
    from scaledl.report.training import training_report

    pkg = open_package(digits_package)
    figures = pkg.manifest.metrics.model_dump(mode="json")["utilisation"]
    assert figures["samples_per_second"] > 0
    assert figures["flops_per_sample"] >= 2 * figures["forward_flops_per_sample"] > 0
    assert 0.0 < figures["utilisation"] <= 1.5
    assert 0.0 <= figures["data_wait_fraction"] <= 1.0
    assert figures["dtype"] == "fp32" and figures["data_workers"] == 0
    html = training_report(pkg, [])
    assert "Training speed and utilisation" in html and "fraction of the peak" in html


@pytest.mark.parametrize("packed", [False, True])
def test_an_lstm_is_counted_like_a_gru_with_four_gates_instead_of_three(packed: bool) -> None:
    """torch's counter sees no matmul inside a fused LSTM; its FLOPs are added analytically,
    also when the text models pack their sequences."""

    class Reader(torch.nn.Module):
        def __init__(self, cell: type[torch.nn.RNNBase]) -> None:
            super().__init__()
            self.rnn = cell(16, 32, num_layers=2, batch_first=True, bidirectional=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if packed:
                lengths = torch.full((len(x),), x.shape[1])
                seq = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
                return torch.nn.utils.rnn.pad_packed_sequence(self.rnn(seq)[0])[0].sum((0, 2))
            return self.rnn(x)[0].sum((1, 2))

    x = torch.randn(4, 10, 16)
    gru, lstm = count_flops(Reader(torch.nn.GRU), x), count_flops(Reader(torch.nn.LSTM), x)
    assert gru.forward_per_sample > 0
    assert lstm.forward_per_sample == pytest.approx(4 / 3 * gru.forward_per_sample, rel=1e-6)
    assert lstm.training_per_sample == pytest.approx(3 * lstm.forward_per_sample)
