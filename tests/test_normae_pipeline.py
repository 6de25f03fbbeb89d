"""NormAE as a Kedro pipeline: any data.csv/info.csv pair declared in datasets.yml, training and
applying a saved model (normae_apply), outputs on the original scale, and bad inputs stopped
before training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omicsgen.preprocessing import simulate_metabolomics, write_metabolomics_csv
from omicsgen.preprocessing.validate import InputValidationError
from tests.conftest import run_kedro

OUTPUTS = ["Ori.csv", "Ys.csv", "Rec.csv", "Codes.csv", "Rec_nobe.csv", "ComBat.csv", "QC-RSC.csv", "SERRF.csv",
           "QC-RSC.json", "SERRF.json", "train.csv", "config.json", "early_stop_info.json", "corrected.h5ad"]
REPORTS = ["metrics.json", "pca_by_batch.png", "qc_rsd_distribution.png", "training_curves.png", "data.json"]
DATASET = "simulated"


def simulated_tables():
    return simulate_metabolomics(n_features=40, n_batches=3, samples_per_batch=12, qc_every=4,
                                 class_labels=("case", "control"), seed=11)


def declare_tables(project: Path, data: pd.DataFrame, info: pd.DataFrame) -> Path:
    """Write the tables under data/01_raw/simulated and declare them as the metabolomics
    dataset ``simulated`` in the test environment's datasets.yml, switching the shipped
    MTBLS79 off (how a user brings their own data: no catalog edit)."""
    write_metabolomics_csv(data, info, project / "data" / "01_raw" / "simulated")
    (project / "conf" / "test" / "datasets.yml").write_text(
        "datasets:\n"
        "  mtbls79: null\n"
        f"  {DATASET}:\n"
        "    kind: metabolomics\n"
        "    files: {data: data/01_raw/simulated/data.csv, info: data/01_raw/simulated/info.csv}\n"
    )
    return project


def written(project: Path) -> list[Path]:
    """Models and results (the data description, data.json, may be written before a check fails)."""
    return [p for layer in ("06_models", "07_model_output", "08_reporting") for dataset in (DATASET, "mtbls79")
            for p in (project / "data" / "test" / layer / dataset / "normae").glob("*") if p.name != "data.json"]


def test_normae_pipeline_end_to_end_on_a_declared_table_pair(kedro_project_copy):
    data, info = simulated_tables()
    project = declare_tables(kedro_project_copy, data, info)
    run_kedro(project, pipeline_names=["normae"])

    output = project / "data" / "test" / "07_model_output" / DATASET / "normae"
    assert all((output / name).exists() for name in OUTPUTS)
    assert (project / "data" / "test" / "06_models" / DATASET / "normae" / "normae.pt").exists()
    assert all((project / "data" / "test" / "08_reporting" / DATASET / "normae" / name).exists() for name in REPORTS)
    # only the declared dataset ran: the shipped MTBLS79 is switched off
    assert not any((project / "data" / "test" / layer / "mtbls79").exists() for layer in ("05_model_input", "07_model_output"))

    ori = pd.read_csv(output / "Ori.csv").set_index("feature")
    rec_nobe = pd.read_csv(output / "Rec_nobe.csv").set_index("feature")
    assert list(ori.columns) == list(info["sample_id"])  # every simulated sample, in order
    assert rec_nobe.shape == ori.shape
    # Ori is the input after imputation: the observed intensities are unchanged
    observed = data.set_index("feature").loc[ori.index]
    mask = observed.notna().to_numpy()
    np.testing.assert_allclose(ori.to_numpy()[mask], observed.to_numpy()[mask], rtol=1e-9)
    # inverse transforms applied once: corrected values live on the intensity scale
    # (applied twice, exp(log) scale would explode by orders of magnitude)
    ratio = np.median(rec_nobe.to_numpy()) / np.median(ori.to_numpy())
    assert 0.2 < ratio < 5
    assert pd.read_csv(output / "Codes.csv").shape == (len(info), 1 + 8)  # sample_id + latent
    assert set(pd.read_csv(output / "Ys.csv")["sample_id"]) == set(info["sample_id"])
    history = pd.read_csv(output / "train.csv")
    assert list(history["phase"].unique()) == ["autoencoder_pretraining", "adversary_pretraining", "adversarial_training"]
    stop = json.loads((output / "early_stop_info.json").read_text())
    assert 1 <= stop["adversarial_epoch"] <= 3 and stop["training_seconds"] > 0
    assert json.loads((output / "config.json").read_text())["batches"] == ["1", "2", "3"]

    report = json.loads((project / "data" / "test" / "08_reporting" / DATASET / "normae" / "metrics.json").read_text())
    assert report["class_labels"] == ["case", "control"]
    assert set(report["metrics"]) == {"uncorrected", "combat", "qc_rsc", "serrf", "normae"}
    scores = {"qc_pca_distance", "qc_correlation", "median_qc_rsd", "batch_accuracy", "class_auc",
              "qc_pca_distance_log_standardised", "batch_accuracy_log_standardised"}
    for name, values in report["metrics"].items():
        cross_validated = {"median_qc_rsd_cross_validated"} if name in ("qc_rsc", "serrf") else set()
        assert set(values) == scores | cross_validated
        assert all(np.isfinite(v) for v in values.values())
    # the QC-based baselines: QCs left out of the fit are corrected worse than fitted ones
    for name in ("qc_rsc", "serrf"):
        assert report["metrics"][name]["median_qc_rsd_cross_validated"] >= report["metrics"][name]["median_qc_rsd"]
        assert report["metrics"][name]["median_qc_rsd"] < report["metrics"]["uncorrected"]["median_qc_rsd"]
        assert report["qc_baselines"][name]["cross_validation"]["n_folds"] == 4
    batch_shares = info["batch"].value_counts(normalize=True)
    assert report["batch_accuracy_chance"] == pytest.approx(batch_shares.max())
    assert report["targets_met"]["batch_accuracy_below_combat_or_both_at_chance"] == (
        report["metrics"]["normae"]["batch_accuracy"] < report["metrics"]["combat"]["batch_accuracy"]
        or max(report["metrics"][k]["batch_accuracy"] for k in ("normae", "combat")) <= report["batch_accuracy_chance"]
    )
    assert set(report["qc_rsd_evaluation"]) == set(report["metrics"]) and set(report["scales"]) == {"intensity", "log_standardised"}
    qc_rsc = pd.read_csv(output / "QC-RSC.csv").set_index("feature")
    assert qc_rsc.shape == ori.shape and list(qc_rsc.columns) == list(ori.columns)

    training = json.loads((project / "data" / "test" / "06_models" / DATASET / "normae" / "training.json").read_text())
    assert training["epochs_run"] == 3 + 2 + 3 and training["best_epoch"] == stop["selected_epoch"]
    assert training["config"]["seed"] == 0 and len(training["history"]) == len(history)

    # apply alone: the saved checkpoint, read back from 06_models, gives the same data
    run_kedro(project, pipeline_names=["normae_apply"])
    applied = project / "data" / "test" / "07_model_output" / DATASET / "normae_apply"
    pd.testing.assert_frame_equal(pd.read_csv(applied / "applied.csv").set_index("feature"), rec_nobe)
    assert (applied / "applied.h5ad").exists()


def _drop_info_sample(data, info):
    return data, info.iloc[1:], "b01_0001_QC"


def _extra_info_sample(data, info):
    extra = info.iloc[[0]].assign(sample_id="ghost_sample")
    return data, pd.concat([info, extra]), "ghost_sample"


def _no_qc(data, info):
    return data, info.assign(**{"class": info["class"].replace("QC", "case")}), "no QC samples"


def _one_batch(data, info):
    return data, info.assign(batch=1), "one batch only"


def _non_numeric(data, info):
    data = data.astype(object)
    data.iloc[4, 7] = "12,5"  # a decimal comma
    return data, info, "'12,5'"


def _empty_feature(data, info):
    data = data.copy()
    data.iloc[6, 1:] = np.nan
    return data, info, "feature_0006"


def _one_sample_batch(data, info):
    info = info.copy()
    info.loc[info.index[-1], "batch"] = 4
    return data, info, "batches '4'"


def _missing_batch(data, info):
    info = info.copy()
    info.loc[info.index[5], "batch"] = np.nan
    return data, info, "column 'batch' is empty for samples 'b01_0006_"


def _duplicated_sample(data, info):
    info = info.copy()
    info.loc[info.index[3], "sample_id"] = info["sample_id"].iloc[2]
    return data, info, "appear more than once"


@pytest.mark.parametrize(
    "corrupt",
    [_drop_info_sample, _extra_info_sample, _no_qc, _one_batch, _non_numeric, _empty_feature,
     _one_sample_batch, _missing_batch, _duplicated_sample],
)
def test_bad_input_stops_the_run_before_training(kedro_project_copy, corrupt):
    data, info, named = corrupt(*simulated_tables())
    project = declare_tables(kedro_project_copy, data, info)
    with pytest.raises(InputValidationError, match=named):
        run_kedro(project, pipeline_names=["normae"])
    assert written(project) == []
