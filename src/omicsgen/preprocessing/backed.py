"""Data engineering of large single-cell files a block of rows at a time.

An h5ad larger than :data:`BACKED_BYTES` (the catalog's ``backed: auto``) is opened with
``backed="r"``: obs and var are in memory, the matrix stays on disk. The steps of
:mod:`omicsgen.preprocessing.expression` then run here instead, with the same results:

- checks (finite values, counts) scan the matrix block by block;
- a step that changes no value (no cell subsampled or filtered, every gene kept, the
  split, the HVG marks) returns the same file with new annotations;
- a step that does (subsampling, QC filtering, normalisation, an HVG subset) writes a new
  h5ad in the scratch directory, block by block, and returns it opened backed.

Memory is then the annotations plus one block (:data:`BLOCK_CELLS` rows), whatever the
number of cells. Scratch files are removed when the process ends; the catalog copies what
it saves out of them (``omicsgen.datasets.AnnDataDataset``).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsgen.preprocessing.validate import InputValidationError, preview, source_of

logger = logging.getLogger(__name__)

#: an h5ad whose matrix (X, uncompressed) exceeds this is opened backed by ``backed: auto``
BACKED_BYTES = 512 * 2**20
#: rows read and written at a time
BLOCK_CELLS = 2**13

_SCRATCH: list[Path] = []


def matrix_bytes(path: str | Path) -> int:
    """Uncompressed size of an h5ad's X, read from its header (nothing loaded)."""
    with h5py.File(path, "r") as handle:
        if "X" not in handle:
            return 0
        x = handle["X"]
        if isinstance(x, h5py.Dataset):
            return int(np.prod(x.shape)) * x.dtype.itemsize
        return int(x["data"].shape[0]) * (x["data"].dtype.itemsize + x["indices"].dtype.itemsize)


def read_backed(path: str | Path) -> ad.AnnData:
    """An h5ad opened read-only with X **and its layers** on disk. (anndata's backed mode keeps
    only X there and reads every layer into memory: the counts layer of 10^6 cells × 2,000
    genes is 6.7 GB.) obs, var, uns and obsm are in memory."""
    with h5py.File(path, "r") as handle:
        parts = {key: ad.io.read_elem(handle[key]) for key in ("obs", "var", "uns", "obsm", "varm") if key in handle}
        layers = list(handle["layers"]) if "layers" in handle else []
    adata = ad.AnnData(**parts, filename=str(path), filemode="r")
    for name in layers:
        stored = adata.file["layers"][name]
        adata.layers[name] = ad.io.sparse_dataset(stored) if isinstance(stored, h5py.Group) else stored
    return adata


def opens_backed(path: str | Path, backed: str | None) -> str | None:
    """``backed: auto`` → ``"r"`` for a large local h5ad, else in memory (None)."""
    if backed != "auto":
        return backed
    return "r" if matrix_bytes(path) > BACKED_BYTES else None


def scratch_file(directory: str | Path | None, name: str) -> Path:
    """A new h5ad path under ``directory`` (default: the system's temporary directory),
    removed when the process exits."""
    parent = Path(tempfile.mkdtemp(prefix="omicsgen-", dir=directory))
    _SCRATCH.append(parent)
    return parent / f"{name}.h5ad"


@atexit.register
def _remove_scratch() -> None:
    for parent in _SCRATCH:
        shutil.rmtree(parent, ignore_errors=True)


def _matrix(adata: ad.AnnData, layer: str | None):
    return adata.X if layer in (None, "X") else adata.layers[layer]


def blocks(adata: ad.AnnData, layer: str | None = None, block_cells: int = BLOCK_CELLS) -> Iterator[tuple[int, sp.csr_matrix]]:
    """(first row, CSR block) over X or a layer of a (backed) AnnData."""
    matrix = _matrix(adata, layer)
    for start in range(0, adata.n_obs, block_cells):
        block = matrix[start : min(start + block_cells, adata.n_obs)]
        yield start, block if sp.issparse(block) else sp.csr_matrix(np.asarray(block))


def check_values(adata: ad.AnnData, layer: str | None = None, counts: bool = False) -> None:
    """Finite values (and, for ``counts``, non-negative integers), block by block; the error
    names the file, the matrix and the first offending cells."""
    where = "X" if layer in (None, "X") else f"layers['{layer}']"
    tests: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [("NaN/inf values", lambda v: ~np.isfinite(v))]
    if counts:
        tests += [("negative values (counts expected)", lambda v: v < 0),
                  ("non-integer values (counts expected)", lambda v: v != np.round(v))]  # fmt: skip
    for start, block in blocks(adata, layer):
        for what, bad in tests:
            offending = bad(block.data)
            if offending.any():
                rows = np.unique(np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))[offending]) + start
                raise InputValidationError(
                    f"{source_of(adata)}: {where} has {what} in cells {preview(adata.obs_names[rows])}"
                )


def is_counts(adata: ad.AnnData, layer: str | None = None) -> bool:
    """Non-negative integers throughout (block by block)."""
    try:
        check_values(adata, layer, counts=True)
    except InputValidationError:
        return False
    return True


def write_blocks(  # noqa: PLR0913
    path: Path,
    obs: pd.DataFrame,
    var: pd.DataFrame,
    uns: dict,
    matrices: dict[str, Iterator[sp.csr_matrix]],
) -> ad.AnnData:
    """Write an h5ad whose X (key ``"X"``) and layers come from iterators of CSR blocks
    (all the same rows), then open it backed."""
    ad.AnnData(obs=obs, var=var, uns=uns).write_h5ad(path)
    with h5py.File(path, "a") as handle:
        names = list(matrices)
        started: dict[str, bool] = dict.fromkeys(names, False)
        for parts in zip(*(matrices[name] for name in names), strict=True):
            for name, part in zip(names, parts, strict=True):
                group, key = (handle, "X") if name == "X" else (handle["layers"], name)
                if not started[name]:
                    ad.io.write_elem(group, key, sp.csr_matrix(part))
                    started[name] = True
                else:
                    ad.io.sparse_dataset(group[key]).append(sp.csr_matrix(part))
    return read_backed(path)


def with_annotations(adata: ad.AnnData, obs=None, var=None, uns=None) -> ad.AnnData:
    """The same backed file with new obs/var/uns (held in memory until saved)."""
    out = read_backed(adata.filename)
    out.obs = adata.obs.copy() if obs is None else obs
    out.var = adata.var.copy() if var is None else var
    out.uns = dict(adata.uns) if uns is None else uns
    return out


def subset(adata: ad.AnnData, rows: np.ndarray | None, columns: np.ndarray | None, scratch: Path | None, name: str) -> ad.AnnData:
    """The cells ``rows`` (sorted positions) and genes ``columns`` (a mask), written block by
    block; the same file when both keep everything."""
    rows = np.arange(adata.n_obs) if rows is None else np.asarray(rows)
    columns = np.ones(adata.n_vars, dtype=bool) if columns is None else np.asarray(columns)
    if len(rows) == adata.n_obs and columns.all():
        return with_annotations(adata)
    layer_names = ["X", *adata.layers.keys()]

    def part(layer: str) -> Iterator[sp.csr_matrix]:
        matrix = _matrix(adata, layer)
        for start in range(0, len(rows), BLOCK_CELLS):
            chosen = rows[start : start + BLOCK_CELLS]
            block = matrix[int(chosen[0]) : int(chosen[-1]) + 1]
            block = block if sp.issparse(block) else sp.csr_matrix(np.asarray(block))
            yield block[chosen - chosen[0]][:, columns]

    return write_blocks(
        scratch_file(scratch, name), adata.obs.iloc[rows].copy(), adata.var.loc[columns].copy(), dict(adata.uns),
        {layer: part(layer) for layer in layer_names},
    )  # fmt: skip


def qc_masks(adata: ad.AnnData, min_genes: int, min_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """(cells kept, genes kept) as scanpy's filter_cells then filter_genes, block by block."""
    genes_per_cell = np.zeros(adata.n_obs, dtype=np.int64)
    for start, block in blocks(adata):
        block.eliminate_zeros()
        genes_per_cell[start : start + block.shape[0]] = np.diff(block.indptr)
    cells = genes_per_cell >= min_genes
    cells_per_gene = np.zeros(adata.n_vars, dtype=np.int64)
    for start, block in blocks(adata):
        kept = block[cells[start : start + block.shape[0]]]
        cells_per_gene += np.bincount(kept.indices[kept.data != 0], minlength=adata.n_vars)
    return cells, cells_per_gene >= min_cells


def normalise(adata: ad.AnnData, counts_source: str, target_sum: float, scratch: Path | None) -> ad.AnnData:
    """X = log1p(counts scaled to ``target_sum`` per cell), float32, counts in
    ``layers["counts"]``; written block by block."""
    layer = None if counts_source == "X" else counts_source.removeprefix("layers/")

    def counts() -> Iterator[sp.csr_matrix]:
        for _, block in blocks(adata, layer):
            yield block.astype(np.float32)

    def normalised() -> Iterator[sp.csr_matrix]:
        for block in counts():
            totals = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
            scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
            out = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ block, dtype=np.float32)
            np.log1p(out.data, out=out.data)
            yield out

    uns = {**dict(adata.uns), "log1p": {"base": None}}
    return write_blocks(
        scratch_file(scratch, "normalised"), adata.obs.copy(), adata.var.copy(), uns,
        {"X": normalised(), "counts": counts()},
    )  # fmt: skip


def _seurat_dispersions(mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Seurat's normalised dispersion (Satija et al. 2015; scanpy's ``flavor="seurat"``):
    log dispersion z-scored within 20 bins of log mean expression."""
    mean = np.where(mean == 0, 1e-12, mean)
    dispersion = np.log(np.where(variance == 0, np.nan, variance / mean))
    frame = pd.DataFrame({"bin": pd.cut(np.log1p(mean), bins=20), "dispersion": dispersion})
    grouped = frame.groupby("bin", observed=True)["dispersion"]
    centre, spread = grouped.transform("mean"), grouped.transform("std")
    # a bin of one gene has no spread: scanpy gives such genes a normalised dispersion of 1
    spread = spread.where(spread.notna() & (spread > 0))
    return np.where(spread.isna() & frame["dispersion"].notna(), 1.0, ((frame["dispersion"] - centre) / spread).to_numpy())


def highly_variable(adata: ad.AnnData, n_top_genes: int, batch_key: str | None = None) -> np.ndarray:
    """The ``n_top_genes`` genes of highest Seurat dispersion of expm1(X), from per-gene
    sums of one pass; with ``batch_key``, ranked by the number of batches in which a gene is
    among the top, then by its mean normalised dispersion (scanpy's rule)."""
    groups = adata.obs[batch_key].astype(str).to_numpy() if batch_key else np.zeros(adata.n_obs, dtype=str)
    names = sorted(set(groups))
    codes = pd.Categorical(groups, categories=names).codes
    sums = np.zeros((len(names), adata.n_vars))
    squares = np.zeros_like(sums)
    for start, block in blocks(adata):
        values = block.copy()
        np.expm1(values.data, out=values.data)
        block_codes = codes[start : start + block.shape[0]]
        for code in np.unique(block_codes):
            rows = values[block_codes == code]
            sums[code] += np.asarray(rows.sum(axis=0)).ravel()
            squares[code] += np.asarray(rows.multiply(rows).sum(axis=0)).ravel()
    sizes = np.bincount(codes, minlength=len(names))[:, None].astype(np.float64)
    means = sums / sizes
    variances = (squares - sizes * means**2) / np.maximum(sizes - 1, 1)
    dispersions = np.vstack([_seurat_dispersions(m, v) for m, v in zip(means, variances, strict=True)])
    if len(names) == 1:
        order = np.argsort(-np.nan_to_num(dispersions[0], nan=-np.inf), kind="stable")
        return np.isin(np.arange(adata.n_vars), order[:n_top_genes])
    top_in = np.zeros(adata.n_vars, dtype=int)
    for row in dispersions:
        top_in[np.argsort(-np.nan_to_num(row, nan=-np.inf), kind="stable")[:n_top_genes]] += 1
    mean_dispersion = np.nan_to_num(np.nanmean(dispersions, axis=0), nan=-np.inf)
    order = np.lexsort((-mean_dispersion, -top_in))
    return np.isin(np.arange(adata.n_vars), order[:n_top_genes])


def _copy_in_slices(source, destination_parent, name: str, rows: int = 2**22) -> None:
    """An HDF5 dataset or group copied a slice at a time (``h5py``'s ``copy`` may read a
    whole dataset into memory), with its attributes and compression."""
    if isinstance(source, h5py.Group):
        group = destination_parent.create_group(name)
        for key, value in source.attrs.items():
            group.attrs[key] = value
        for child in source:
            _copy_in_slices(source[child], group, child, rows)
        return
    if source.shape == () or source.dtype.kind in "OSU":  # scalars and strings are small
        source.parent.copy(source, destination_parent, name)
        return
    target = destination_parent.create_dataset(
        name, shape=source.shape, dtype=source.dtype, chunks=source.chunks,
        compression=source.compression, compression_opts=source.compression_opts,
    )  # fmt: skip
    for start in range(0, source.shape[0], rows):
        target[start : start + rows] = source[start : start + rows]
    for key, value in source.attrs.items():
        target.attrs[key] = value


def copy_backed(adata: ad.AnnData, path: str | Path) -> None:
    """Save a backed AnnData to ``path``: its annotations written anew, its matrices copied
    from its file a slice at a time (nothing the size of the matrix passes through memory)."""
    source, path = Path(adata.filename), Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ad.AnnData(obs=adata.obs, var=adata.var, uns=dict(adata.uns), obsm=dict(adata.obsm)).write_h5ad(temporary)
        with h5py.File(source, "r") as src, h5py.File(temporary, "a") as dst:
            for name in ("X", "layers"):
                if name in src:
                    if name in dst:
                        del dst[name]
                    _copy_in_slices(src[name], dst, name)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
