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
    assert result.threads == torch.get_num_threads() >= 1
    assert result.versions["torch"] == torch.__version__.split("+")[0] or result.versions["torch"] == torch.__version__
    assert {"numpy", "scanpy", "anndata"} <= set(result.versions)


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


class Killed(Exception):
    pass


class KilledAfter(RegressionPlan):
    """Dies at the end of epoch ``epoch``, like a killed process (its checkpoint stays)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=3, gamma=0.5)
        self.kill_at = epoch

    def on_epoch_end(self, epoch, record):
        self.scheduler.step()
        if epoch == self.kill_at:
            raise Killed


class WithScheduler(KilledAfter):
    def __init__(self):
        super().__init__(epoch=-1)


def _weights(plan):
    return {k: v.clone() for k, v in plan.net.state_dict().items()}


def test_a_killed_training_resumes_to_the_same_weights_and_history(data, tmp_path):
    train, valid = data
    config = TrainingConfig(max_epochs=12, patience=None, restore_best=False, seed=5, checkpoint_every=4)
    whole_plan = WithScheduler()
    whole = fit(whole_plan, train, valid, config, checkpoint_path=tmp_path / "whole.pt")

    path = tmp_path / "killed.pt"
    with pytest.raises(Killed):
        fit(KilledAfter(epoch=10), train, valid, config, checkpoint_path=path, fingerprint={"genes": ["a"]})
    assert path.exists()  # the epoch-8 checkpoint; epochs 9 and 10 are redone
    resumed_plan = WithScheduler()
    resumed_config = TrainingConfig(**{**config.__dict__, "resume": True})
    resumed = fit(resumed_plan, train, valid, resumed_config, checkpoint_path=path, fingerprint={"genes": ["a"]})

    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]
    assert [r["validation_loss"] for r in resumed.history] == [r["validation_loss"] for r in whole.history]
    for name, value in _weights(whole_plan).items():
        assert torch.equal(value, _weights(resumed_plan)[name]), name
    assert resumed_plan.scheduler.get_last_lr() == whole_plan.scheduler.get_last_lr()


def test_resuming_another_configuration_or_a_corrupt_checkpoint_names_the_file(data, tmp_path):
    from omicsgen.models.training import ResumeError

    train, valid = data
    path = tmp_path / "run.pt"
    config = TrainingConfig(max_epochs=4, patience=None, seed=0, checkpoint_every=2)
    fit(RegressionPlan(), train, valid, config, checkpoint_path=path, fingerprint={"genes": ["a", "b"]})
    before = path.read_bytes()
    other = TrainingConfig(max_epochs=4, patience=None, seed=0, checkpoint_every=2, batch_size=64, resume=True)
    with pytest.raises(ResumeError) as error:
        fit(RegressionPlan(), train, valid, other, checkpoint_path=path, fingerprint={"genes": ["a", "c"]})
    message = str(error.value)
    assert str(path) in message and "training.batch_size" in message and "fingerprint.genes" in message
    assert "32" in message and "64" in message and "['a', 'b']" in message and "['a', 'c']" in message
    assert path.read_bytes() == before  # nothing already written is lost

    path.write_bytes(before[: len(before) // 2])
    resume = TrainingConfig(max_epochs=4, patience=None, seed=0, checkpoint_every=2, resume=True)
    with pytest.raises(ResumeError, match=rf"{path}: not a readable training checkpoint"):
        fit(RegressionPlan(), train, valid, resume, checkpoint_path=path, fingerprint={"genes": ["a", "b"]})


def test_label_codes_sorts_categories_and_keeps_given_ones():
    import numpy as np

    from omicsgen.models.base import label_codes

    categories, codes = label_codes(np.array(["b", "a", "b", "c"]))
    assert categories == ["a", "b", "c"] and codes.tolist() == [1, 0, 1, 2] and codes.dtype == np.int64
    # given categories keep their order; a label outside them is -1; numbers are read as text
    categories, codes = label_codes([2, 1, 7], ["2", "1"])
    assert categories == ["2", "1"] and codes.tolist() == [0, 1, -1]


def test_uniform_mask_dropout_keeps_the_expected_share_scaled_and_passes_gradients_through_the_mask():
    from omicsgen.models.nn import UniformMaskDropout

    torch.manual_seed(0)
    layer = UniformMaskDropout(0.2)
    x = torch.ones(1000, 1000, requires_grad=True)
    out = layer(x)
    kept = out > 0
    assert abs(kept.float().mean().item() - 0.8) < 0.005
    assert torch.all(out[kept] == 1 / 0.8) and abs(out.mean().item() - 1.0) < 0.01
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # d(x * mask)/dx = mask
    assert torch.equal(layer.eval()(x), x)
