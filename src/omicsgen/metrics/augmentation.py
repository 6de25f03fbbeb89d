"""Does adding synthetic cells of a rare cell type help a cell-type classifier?

The experiment of Marouf et al. 2020: a cell type is downsampled to a few percent of its
training cells; a classifier is trained on (a) the downsampled data, (b) the downsampled
data plus that type's remaining real training cells resampled with replacement up to
``n_added`` cells, (c) the downsampled data plus ``n_added`` generated cells of that type.
The rare type's F1 on a held-out test split is reported for each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import f1_score, precision_score, recall_score

from omicsgen.metrics.generation import ReferenceSpace


def stratified_test_split(labels: np.ndarray, test_fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of test cells, ``test_fraction`` of every label (at least one each)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_test = max(1, round(test_fraction * len(members)))
        test[rng.choice(members, min(n_test, len(members) - 1), replace=False)] = True
    return test


def downsample_label(
    labels: np.ndarray, label: str, fraction: float, minimum: int = 2, seed: int = 0
) -> np.ndarray:
    """Indices kept after keeping only ``fraction`` (at least ``minimum``) of ``label``'s cells."""
    rng = np.random.default_rng(seed)
    members = np.flatnonzero(labels == label)
    n_keep = min(len(members), max(minimum, round(fraction * len(members))))
    kept = rng.choice(members, n_keep, replace=False)
    return np.sort(np.concatenate([np.flatnonzero(labels != label), kept]))


def _fit_and_score(  # noqa: PLR0913
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    rare: str,
    n_components: int,
    n_trees: int,
    seed: int,
) -> dict[str, float]:
    space = ReferenceSpace.fit(train_x, n_components, seed)
    forest = RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)
    forest.fit(space.transform(train_x), train_y)
    predicted = forest.predict(space.transform(test_x))
    truth, guess = test_y == rare, predicted == rare
    return {
        "f1": float(f1_score(truth, guess, zero_division=0)),
        "precision": float(precision_score(truth, guess, zero_division=0)),
        "recall": float(recall_score(truth, guess, zero_division=0)),
        "n_training_cells_of_type": int((train_y == rare).sum()),
    }


def augmentation_experiment(  # noqa: PLR0913
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    rare: str,
    generated_x: np.ndarray,
    n_components: int = 50,
    n_trees: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Rare-type F1 of classifiers trained on (a) ``train``, (b) + resampled real, (c) + generated.

    ``train_x``/``train_y`` are the downsampled training cells; (b) resamples their
    ``rare`` cells with replacement to as many cells as ``generated_x`` holds.
    """
    train_y, test_y = np.asarray(train_y, dtype=str), np.asarray(test_y, dtype=str)
    rng = np.random.default_rng(seed)
    rare_cells = np.flatnonzero(train_y == rare)
    resampled = rng.choice(rare_cells, len(generated_x), replace=True)
    added = np.repeat(rare, len(generated_x))
    runs: Mapping[str, tuple[np.ndarray, np.ndarray]] = {
        "a_downsampled": (train_x, train_y),
        "b_resampled_real": (np.vstack([train_x, train_x[resampled]]), np.r_[train_y, added]),
        "c_generated": (np.vstack([train_x, generated_x]), np.r_[train_y, added]),
    }
    results: dict[str, Any] = {
        name: _fit_and_score(x, y, test_x, test_y, rare, n_components, n_trees, seed)
        for name, (x, y) in runs.items()
    }
    results["rare_cell_type"] = rare
    results["n_added_cells"] = len(generated_x)
    results["n_test_cells_of_type"] = int((test_y == rare).sum())
    return results
