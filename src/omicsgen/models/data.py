"""From AnnData to tensors: in memory for small data, streamed for large data.

A cell method trains on X (or a layer) of an AnnData. Small matrices become one dense
tensor on the device, which is the fastest way to train a small network: a minibatch is
one index into it. Large ones stay where they are (a sparse matrix in memory, or the
X of an h5ad opened with ``backed="r"``) and are served as :class:`CellRows`: only the
rows of the current minibatch are densified and moved to the device, and a backed file
is read a buffer of contiguous chunks at a time (random single-row reads from HDF5 cost
~1 ms each; a 32-row minibatch read that way would take longer than training on it).

``training.data_loading`` chooses: ``memory``, ``stream``, or ``auto`` (the default:
stream when the AnnData is backed or its dense matrix would exceed
:data:`DENSE_LIMIT_BYTES`).
"""

from __future__ import annotations

from collections.abc import Callable

import anndata as ad
import numpy as np
import scipy.sparse as sp
import torch

#: ``auto`` keeps a matrix in memory as one dense tensor up to this size (the training
#: node also holds its train/validation subsets, about twice as much again); above it,
#: rows are densified per minibatch, which costs ~2% per epoch on scGen-sized networks
#: (benchmarks/scale.md) and keeps memory flat.
DENSE_LIMIT_BYTES = 256 * 2**20
#: contiguous rows read from a backed file at a time ...
CHUNK_CELLS = 512
#: ... and cells held in memory per buffer (shuffled within it): about 140 MB of CSR at
#: 2,000 genes and 40% non-zeros
BUFFER_CELLS = 2**15
LOADING_MODES = ("auto", "memory", "stream")
#: reading a backed file: rows closer than GAP_ROWS are read in one span of at most
#: SPAN_ROWS rows and the wanted ones picked out
GAP_ROWS = 256
SPAN_ROWS = 4096


def _matrix_of(adata: ad.AnnData, layer: str | None):
    return adata.X if layer is None else adata.layers[layer]


def dense_matrix(adata: ad.AnnData, layer: str | None = None) -> np.ndarray:
    """X (or a layer) as a dense float32 array (read whole from a backed file)."""
    matrix = _matrix_of(adata, layer)
    if not isinstance(matrix, np.ndarray) and not sp.issparse(matrix):
        matrix = matrix[:]  # a backed dataset
    if sp.issparse(matrix):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=np.float32)


def _dense_rows(block) -> np.ndarray:
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    return np.ascontiguousarray(block, dtype=np.float32)


class CellRows:
    """The rows ``rows`` of a cells × genes matrix, densified to float32 tensors on demand.

    ``matrix`` is a dense array, a scipy sparse matrix, or a backed h5ad's X/layer (anndata's
    on-disk CSR dataset or an h5py dataset). Indexing with positions (into ``rows``) returns a
    dense tensor on ``device``; :func:`omicsgen.models.training.minibatches` reads a backed
    matrix a buffer at a time (:meth:`load_buffer`) and indexes within it.
    """

    def __init__(
        self,
        matrix,
        rows: np.ndarray | None = None,
        device: torch.device | str = "cpu",
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        #: applied to every dense block served (e.g. ``np.log1p``)
        self.transform = transform
        self.matrix = matrix
        n_total = matrix.shape[0]
        self.rows = np.arange(n_total, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        self.device = torch.device(device)
        self.backed = not isinstance(matrix, np.ndarray) and not sp.issparse(matrix)
        if sp.issparse(matrix) and not sp.isspmatrix_csr(matrix):
            self.matrix = sp.csr_matrix(matrix)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.matrix.shape[1])

    def to(self, device: torch.device | str) -> CellRows:
        """The same rows, served on ``device``."""
        return CellRows(self.matrix, self.rows, device, self.transform)

    def subset(self, positions: np.ndarray) -> CellRows:
        """These rows at ``positions`` (an index or boolean mask into this object)."""
        positions = np.asarray(positions)
        if positions.dtype == bool:
            positions = np.flatnonzero(positions)
        return CellRows(self.matrix, self.rows[positions], self.device, self.transform)

    def _read(self, matrix_rows: np.ndarray):
        """Rows of the underlying matrix, in the given order (sparse or dense, in memory)."""
        if not self.backed:
            return self.matrix[matrix_rows]
        in_order = bool(np.all(matrix_rows[1:] > matrix_rows[:-1]))
        order = np.arange(len(matrix_rows)) if in_order else np.argsort(matrix_rows, kind="stable")
        sorted_rows = matrix_rows[order]
        # one HDF5 read per span of nearby rows (a train/validation split leaves every tenth
        # row out: reading only exact runs would cost thousands of reads per buffer), each
        # span at most SPAN_ROWS long, the rows wanted then picked from it
        breaks = np.flatnonzero(np.diff(sorted_rows) > GAP_ROWS) + 1
        parts = []
        for group in np.split(sorted_rows, breaks):
            for start in range(int(group[0]), int(group[-1]) + 1, SPAN_ROWS):
                wanted = group[(group >= start) & (group < start + SPAN_ROWS)]
                if len(wanted):
                    span = self.matrix[int(wanted[0]) : int(wanted[-1]) + 1]
                    parts.append(span[wanted - wanted[0]])
        block = sp.vstack(parts, format="csr") if sp.issparse(parts[0]) else np.concatenate(parts)
        if in_order:
            return block
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return block[inverse]

    def in_memory(self, positions: np.ndarray | None = None) -> CellRows:
        """The rows at ``positions`` (default: all) read into memory, as new :class:`CellRows`:
        a backed matrix is read once, in contiguous runs, for the minibatches cut from it."""
        rows = self.rows if positions is None else self.rows[np.asarray(positions, dtype=np.int64)]
        return CellRows(self._read(rows), device=self.device, transform=self.transform)

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, slice):
            positions = np.arange(len(self))[index]
        else:
            positions = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        block = _dense_rows(self._read(self.rows[positions]))
        return torch.from_numpy(block if self.transform is None else self.transform(block)).to(self.device)


def dense_bytes(n_rows: int, n_columns: int) -> int:
    return n_rows * n_columns * 4


def streams(adata: ad.AnnData, loading: str = "auto", layer: str | None = None) -> bool:
    """Whether ``loading`` (auto | memory | stream) streams this AnnData's matrix."""
    if loading not in LOADING_MODES:
        raise ValueError(f"training.data_loading must be one of {LOADING_MODES}, not {loading!r}")
    if loading != "auto":
        return loading == "stream"
    return bool(adata.isbacked) or dense_bytes(*adata.shape) > DENSE_LIMIT_BYTES


def expression_matrix(
    adata: ad.AnnData,
    layer: str | None = None,
    loading: str = "auto",
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray | CellRows:
    """X (or a layer), ``transform``-ed: a dense float32 array, or :class:`CellRows` when
    ``loading`` streams it (nothing read yet)."""
    if streams(adata, loading, layer):
        return CellRows(_matrix_of(adata, layer), transform=transform)
    matrix = dense_matrix(adata, layer)
    return matrix if transform is None else transform(matrix)


def cell_rows(
    adata: ad.AnnData, layer: str | None = None, device: torch.device | str = "cpu", loading: str = "auto"
) -> torch.Tensor | CellRows:
    """X (or a layer): one dense tensor on ``device``, or :class:`CellRows` when streamed."""
    return on_device(expression_matrix(adata, layer, loading), device)


def on_device(source: np.ndarray | CellRows, device: torch.device | str) -> torch.Tensor | CellRows:
    """An array as a tensor on ``device``, or streamed rows served there."""
    return source.to(device) if isinstance(source, CellRows) else torch.from_numpy(source).to(device)


def take_rows(source: torch.Tensor | CellRows, mask: np.ndarray) -> torch.Tensor | CellRows:
    """The rows of ``source`` where ``mask`` is true (a tensor, or a streamed subset)."""
    if isinstance(source, CellRows):
        return source.subset(mask)
    return source[torch.from_numpy(np.flatnonzero(mask)).to(source.device)]


#: rows per block when a whole matrix is scanned (checks, sums, means)
SCAN_CELLS = 2**13


def row_blocks(source: np.ndarray | CellRows, block_cells: int = SCAN_CELLS):
    """(first row, rows as an in-memory array or CSR) over ``source``, a buffer at a time."""
    for start in range(0, len(source), block_cells):
        stop = min(start + block_cells, len(source))
        if isinstance(source, CellRows):
            block = source._read(source.rows[start:stop])
            yield start, block if source.transform is None else source.transform(_dense_rows(block))
        else:
            yield start, source[start:stop]


def value_range(source: np.ndarray | CellRows) -> tuple[float, float]:
    """(min, max) of every value, implicit zeros of a sparse matrix included; read blockwise."""
    low, high = np.inf, -np.inf
    for _, block in row_blocks(source):
        values = block.data if sp.issparse(block) else np.asarray(block)
        if sp.issparse(block) and block.nnz < block.shape[0] * block.shape[1]:
            low, high = min(low, 0.0), max(high, 0.0)
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    return low, high


def nonfinite(source: np.ndarray | CellRows) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, rows, columns) of NaN/inf values; read blockwise."""
    count, rows, columns = 0, [], []
    for start, block in row_blocks(source):
        if sp.issparse(block):
            coo = block.tocoo()
            bad = ~np.isfinite(coo.data)
            block_rows, block_columns = coo.row[bad], coo.col[bad]
        else:
            block_rows, block_columns = np.nonzero(~np.isfinite(np.asarray(block)))
        count += len(block_rows)
        rows.append(np.unique(block_rows) + start)
        columns.append(np.unique(block_columns))
    return count, np.unique(np.concatenate(rows or [np.zeros(0, int)])), np.unique(np.concatenate(columns or [np.zeros(0, int)]))


def row_sums(source: np.ndarray | CellRows) -> np.ndarray:
    """Each row's total (float64); read blockwise."""
    return np.concatenate(
        [np.asarray(block.sum(axis=1, dtype=np.float64)).ravel() for _, block in row_blocks(source)]
        or [np.zeros(0)]
    )


def weighted_row_mean(source: np.ndarray | CellRows, weights: np.ndarray) -> np.ndarray:
    """Σ wᵢ·rowᵢ / Σ wᵢ in float64 (``weights``: one per row, e.g. how often a resampled pool
    holds each cell); read blockwise, nothing densified beyond a block."""
    weights = np.asarray(weights, dtype=np.float64)
    total = np.zeros(source.shape[1])
    for start, block in row_blocks(source):
        part = weights[start : start + block.shape[0]]
        if part.any():
            total += np.asarray(block.T @ part if sp.issparse(block) else part @ np.asarray(block, dtype=np.float64)).ravel()
    return total / weights.sum()


def multiplicities(positions: np.ndarray, n_rows: int) -> np.ndarray:
    """How often each of ``n_rows`` rows appears in ``positions`` (a pool drawn with replacement)."""
    return np.bincount(np.asarray(positions, dtype=np.int64), minlength=n_rows).astype(np.float64)


def group_row_means(source: np.ndarray | CellRows, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Mean row of each label (float64), all groups in one blockwise pass."""
    names, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    totals = np.zeros((len(names), source.shape[1]))
    for start, block in row_blocks(source):
        block_codes = codes[start : start + block.shape[0]]
        indicator = sp.csr_matrix(
            (np.ones(len(block_codes)), (block_codes, np.arange(len(block_codes)))), shape=(len(names), len(block_codes))
        )
        totals += np.asarray((indicator @ block).toarray() if sp.issparse(block) else indicator @ np.asarray(block, dtype=np.float64))
    sizes = np.bincount(codes, minlength=len(names))[:, None]
    return {str(name): totals[i] / sizes[i] for i, name in enumerate(names)}


#: the PCA-space baseline is fitted on at most this many matrix values (dense float32:
#: 512 MB): every training cell up to 67,000 cells × 2,000 genes, a seeded subsample above
PCA_FIT_VALUES = 2**27


def dense_sample(source: np.ndarray | CellRows, max_values: int = PCA_FIT_VALUES, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Rows as a dense float32 array: all of them, or a seeded subsample of at most
    ``max_values`` values (then True)."""
    n_rows, n_columns = source.shape
    limit = max(max_values // max(n_columns, 1), 2)
    if n_rows <= limit:
        rows, sampled = np.arange(n_rows), False
    else:
        rows, sampled = np.sort(np.random.default_rng(seed).choice(n_rows, limit, replace=False)), True
    if not isinstance(source, CellRows):
        return np.asarray(source[rows], dtype=np.float32), sampled
    # filled block by block: the sample is the only full-size array
    out = np.empty((len(rows), n_columns), dtype=np.float32)
    filled = 0
    for start, block in row_blocks(source):
        chosen = rows[(rows >= start) & (rows < start + block.shape[0])] - start
        out[filled : filled + len(chosen)] = _dense_rows(block[chosen])
        filled += len(chosen)
    return out, sampled
