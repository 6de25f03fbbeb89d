"""A small Breiman random forest for regression, compiled with numba, for SERRF.

One forest per (feature, batch) on a handful of QCs: scikit-learn's per-tree Python
overhead (about 0.5 ms) would dominate, so trees are grown here in compiled code. Each
tree: a bootstrap sample of the training rows; at each node ``n_try`` predictors are drawn
at random (predictors constant in the node do not count, as in scikit-learn) and the split
with the largest decrease of the squared error is taken, thresholds midway between
distinct values; nodes with fewer than ``min_node_size`` samples (or a constant target)
become leaves, predicting their mean. The forest predicts the mean over trees.

Deterministic: numba's own random generator is seeded at the start of every call.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _forest(x, y, rows, x_eval, columns, n_trees, n_try, min_node_size, out):  # noqa: PLR0912, PLR0913, PLR0915, C901
    n = rows.shape[0]
    d = columns.shape[0]
    m = x_eval.shape[0]
    max_nodes = 2 * n + 1
    feature = np.empty(max_nodes, np.int64)
    threshold = np.empty(max_nodes)
    left = np.empty(max_nodes, np.int64)
    right = np.empty(max_nodes, np.int64)
    value = np.empty(max_nodes)
    index = np.empty(n, np.int64)
    stack_node = np.empty(max_nodes, np.int64)
    stack_start = np.empty(max_nodes, np.int64)
    stack_end = np.empty(max_nodes, np.int64)
    permutation = np.arange(d)
    values = np.empty(n)
    for _ in range(n_trees):
        for i in range(n):
            index[i] = rows[np.random.randint(0, n)]
        n_nodes = 1
        stack_node[0], stack_start[0], stack_end[0] = 0, 0, n
        top = 1
        while top > 0:
            top -= 1
            node, start, end = stack_node[top], stack_start[top], stack_end[top]
            size = end - start
            total = 0.0
            for i in range(start, end):
                total += y[index[i]]
            value[node] = total / size
            feature[node] = -1
            if size < min_node_size or size < 2:
                continue
            best_gain, best_column, best_threshold = 1e-12 * (abs(total) + 1.0), -1, 0.0
            for i in range(d - 1, 0, -1):  # Fisher–Yates: predictors in random order
                j = np.random.randint(0, i + 1)
                permutation[i], permutation[j] = permutation[j], permutation[i]
            tried = 0
            for k in range(d):
                if tried >= n_try:
                    break
                column = columns[permutation[k]]
                for i in range(size):
                    values[i] = x[index[start + i], column]
                order = np.argsort(values[:size])
                if values[order[0]] == values[order[size - 1]]:
                    continue
                tried += 1
                left_sum = 0.0
                for i in range(size - 1):
                    left_sum += y[index[start + order[i]]]
                    low, high = values[order[i]], values[order[i + 1]]
                    if low == high:
                        continue
                    n_left = i + 1
                    right_sum = total - left_sum
                    gain = left_sum * left_sum / n_left + right_sum * right_sum / (size - n_left) - total * total / size
                    if gain > best_gain:
                        best_gain, best_column = gain, column
                        best_threshold = (low + high) / 2.0
                        if best_threshold >= high:
                            best_threshold = low
            if best_column < 0:
                continue
            i, j = start, end - 1
            while i <= j:
                if x[index[i], best_column] <= best_threshold:
                    i += 1
                else:
                    index[i], index[j] = index[j], index[i]
                    j -= 1
            feature[node], threshold[node] = best_column, best_threshold
            left[node], right[node] = n_nodes, n_nodes + 1
            stack_node[top], stack_start[top], stack_end[top] = n_nodes, start, i
            stack_node[top + 1], stack_start[top + 1], stack_end[top + 1] = n_nodes + 1, i, end
            top += 2
            n_nodes += 2
        for r in range(m):
            node = 0
            while feature[node] >= 0:
                node = left[node] if x_eval[r, feature[node]] <= threshold[node] else right[node]
            out[r] += value[node]
    for r in range(m):
        out[r] /= n_trees


@njit(cache=True)
def batch_forests(x, targets, x_eval, neighbours, n_trees, n_try, min_node_size, seed):  # noqa: PLR0913
    """One forest per feature j: trained on the rows of ``x`` (training samples × all
    predictors) whose ``targets[:, j]`` is ≥ 0 (negative: missing), with the predictors
    ``neighbours[j]`` (column indices of ``x``); predicts the rows of ``x_eval``. Returns
    predictions (evaluation rows × features); NaN for a feature with fewer than two
    training values."""
    np.random.seed(seed)
    n_train, p = targets.shape
    out = np.full((x_eval.shape[0], p), np.nan)
    rows = np.empty(n_train, np.int64)
    accumulated = np.zeros(x_eval.shape[0])
    for j in range(p):
        n_valid = 0
        for i in range(n_train):
            if targets[i, j] >= 0:
                rows[n_valid] = i
                n_valid += 1
        if n_valid < 2:
            continue
        accumulated[:] = 0.0
        columns = neighbours[j]
        _forest(x, targets[:, j], rows[:n_valid], x_eval, columns, n_trees, min(n_try, columns.shape[0]),
                min_node_size, accumulated)  # fmt: skip
        out[:, j] = accumulated
    return out
