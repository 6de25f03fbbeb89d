"""Scoring subsamples: bounded, proportional, rare labels kept, seeded."""

from __future__ import annotations

import numpy as np

from omicsgen.metrics.sampling import stratified_subsample, subsample_note


def test_stratified_subsample_keeps_proportions_and_rare_labels():
    labels = np.array(["a"] * 9_000 + ["b"] * 990 + ["c"] * 10)
    kept = stratified_subsample(labels, 1_000, seed=3)
    assert np.all(np.diff(kept) > 0)  # sorted, no repeats
    counts = {label: int((labels[kept] == label).sum()) for label in "abc"}
    assert counts == {"a": 900, "b": 99, "c": 10}  # c is under its share (1) but keeps min_per_label
    assert np.array_equal(kept, stratified_subsample(labels, 1_000, seed=3))
    assert not np.array_equal(kept, stratified_subsample(labels, 1_000, seed=4))


def test_no_cap_or_small_data_keeps_every_row_and_says_nothing():
    labels = np.array(["x", "y"] * 50)
    for cap in (None, 100, 1_000):
        kept = stratified_subsample(labels, cap)
        assert np.array_equal(kept, np.arange(100))
        assert subsample_note(100, kept, cap, "some.max_cells") is None
    kept = stratified_subsample(labels, 20)
    assert subsample_note(100, kept, 20, "some.max_cells") == {
        "cells": 20, "of": 100, "max_cells": 20, "parameter": "some.max_cells",
    }  # fmt: skip
