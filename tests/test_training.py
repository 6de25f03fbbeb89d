"""The shared training loop: early stopping, best weights, seeding, history, devices."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from omicsgen.models.training import (
    TrainingConfig,
    TrainingPlan,
    apply_in_batches,
    fit,
    minibatches,
    resolve_device,
)


class RegressionPlan(TrainingPlan):
    def __init__(self, lr: float = 1e-2):
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)

    def modules(self):
        return {"net": self.net}

    def training_step(self, batch, epoch):
        loss = ((self.net(batch["x"]) - batch["y"]) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss}

    def validation_step(self, batch):
        return {"loss": ((self.net(batch["x"]) - batch["y"]) ** 2).mean()}


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(300, 5, generator=generator)
    y = x @ torch.arange(1.0, 6.0).unsqueeze(1)
    return {"x": x[:240], "y": y[:240]}, {"x": x[240:], "y": y[240:]}


def test_fit_learns_and_records_history(data):
    train, valid = data
    result = fit(RegressionPlan(), train, valid, TrainingConfig(max_epochs=40, patience=None, seed=0))
    assert result.epochs_run == 40 and not result.stopped_early
    assert [row["epoch"] for row in result.history] == list(range(1, 41))
    assert result.history[-1]["validation_loss"] < 0.1 * result.history[0]["validation_loss"]
    assert result.seconds > 0 and result.seconds_per_epoch > 0 and result.peak_memory_mb > 0
    assert result.device == "cpu" and result.config["seed"] == 0


def test_same_seed_same_numbers(data):
    train, valid = data
    runs = [fit(RegressionPlan(), train, valid, TrainingConfig(max_epochs=5, seed=3)) for _ in range(2)]
    assert [r["validation_loss"] for r in runs[0].history] == [r["validation_loss"] for r in runs[1].history]
    other = fit(RegressionPlan(), train, valid, TrainingConfig(max_epochs=5, seed=4))
    assert other.history[-1]["train_loss"] != runs[0].history[-1]["train_loss"]


def test_early_stopping_restores_best_weights(data):
    train, valid = data
    plan = RegressionPlan(lr=0.5)  # too large: validation loss bounces, so it stops early
    result = fit(plan, train, valid, TrainingConfig(max_epochs=200, patience=3, seed=0))
    assert result.stopped_early and result.epochs_run == result.best_epoch + 3
    plan.net.eval()
    with torch.no_grad():
        final = ((plan.net(valid["x"]) - valid["y"]) ** 2).mean().item()
    assert final == pytest.approx(result.best_value, rel=1e-5)


def test_monitor_must_exist(data):
    train, valid = data
    with pytest.raises(KeyError, match="validation_elbo"):
        fit(RegressionPlan(), train, valid, TrainingConfig(max_epochs=2, monitor="elbo"))


def test_unknown_parameter_rejected():
    with pytest.raises(ValueError, match="max_epoch"):
        TrainingConfig.from_params({"max_epoch": 3})


def test_minibatches_cover_every_sample_once():
    tensors = {"x": torch.arange(10)}
    seen = torch.cat([b["x"] for b in minibatches(tensors, 4, torch.Generator().manual_seed(0))])
    # 10 = 4 + 4 + 2: nothing dropped; a final batch of one would be (batch norm)
    assert sorted(seen.tolist()) == list(range(10))
    seen = torch.cat([b["x"] for b in minibatches({"x": torch.arange(9)}, 4, torch.Generator())])
    assert len(seen) == 8
    ordered = torch.cat([b["x"] for b in minibatches({"x": torch.arange(9)}, 4, shuffle=False)])
    assert ordered.tolist() == list(range(9))


def test_apply_in_batches_matches_full_pass():
    net = nn.Linear(3, 2)
    x = torch.randn(50, 3)
    torch.testing.assert_close(apply_in_batches(net, x, batch_size=7), net(x).detach())


def test_device_resolution():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")
