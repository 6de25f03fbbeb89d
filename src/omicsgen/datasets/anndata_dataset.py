"""``AnnDataDataset``: h5ad files in the Kedro catalog.

Saves are atomic: the AnnData is written to a temporary file next to the target
(or locally, for remote filesystems) and only then moved into place, so a crash in
the middle of a save leaves the previous file intact.
"""

from __future__ import annotations

from typing import Any

import anndata as ad
from kedro.io.core import DatasetError, Version, get_protocol_and_path

from omicsgen.datasets._files import VersionedFileDataset
from omicsgen.preprocessing.backed import copy_backed, opens_backed, read_backed
from omicsgen.preprocessing.validate import SOURCE_FILE_KEY  # the file an AnnData came from


class AnnDataDataset(VersionedFileDataset):
    """Load and save :class:`anndata.AnnData` objects as h5ad through fsspec.

    Example catalog entry::

        kang.raw:
          type: omicsgen.datasets.AnnDataDataset
          filepath: data/01_raw/kang_pbmc_ifnb/kang_pbmc_ifnb.h5ad
          backed: auto          # "r" keeps X on disk (local files only), null loads it
          save_args:
            compression: gzip

    Args:
        filepath: Path or URL of the h5ad file (any fsspec protocol).
        backed: ``None`` loads everything into memory; ``"r"`` opens X backed
            (read only, local files only); ``"auto"`` opens a local file backed when its
            matrix exceeds ``omicsgen.preprocessing.backed.BACKED_BYTES`` (512 MiB
            uncompressed), so that data engineering and training stream it.
        load_args: Extra keyword arguments for :func:`anndata.read_h5ad`.
        save_args: Extra keyword arguments for :meth:`anndata.AnnData.write_h5ad`.
        version: Kedro versioning.
        credentials, fs_args: Passed to the fsspec filesystem.
        metadata: Free-form metadata (kedro-viz reads ``kedro-viz.layer``).
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str,
        backed: str | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if backed not in (None, "r", "r+", "auto"):
            raise DatasetError(f"AnnDataDataset: backed must be null, auto, 'r' or 'r+', got {backed!r}")
        if backed in ("r", "r+") and get_protocol_and_path(filepath)[0] != "file":
            raise DatasetError(f"AnnDataDataset: backed loading needs a local file, not '{filepath}'")
        super().__init__(
            filepath=filepath, version=version, credentials=credentials, fs_args=fs_args, metadata=metadata
        )
        self._backed = backed
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "backed": self._backed,
            "load_args": self._load_args,
            "save_args": self._save_args,
            "version": self._version,
        }

    def load(self) -> ad.AnnData:
        load_path = self._load_path()
        if not self._fs.exists(load_path):
            raise DatasetError(f"h5ad file not found: '{load_path}'")
        try:
            if self._protocol == "file":
                backed = opens_backed(load_path, self._backed)
                if backed == "r" and not self._load_args:
                    adata = read_backed(load_path)  # layers stay on disk too
                else:
                    adata = ad.read_h5ad(load_path, backed=backed, **self._load_args)
            else:
                with self._fs.open(load_path, mode="rb") as handle:
                    adata = ad.read_h5ad(handle, **self._load_args)
        except Exception as err:  # h5py raises OSError, anndata KeyError/ValueError
            raise DatasetError(
                f"Could not read '{load_path}' as an h5ad file ({type(err).__name__}: {err}). "
                "The file is corrupt, truncated or not written by anndata."
            ) from err
        adata.uns[SOURCE_FILE_KEY] = load_path
        return adata

    def save(self, data: ad.AnnData) -> None:
        if not isinstance(data, ad.AnnData):
            raise DatasetError(f"AnnDataDataset can only save AnnData objects, got {type(data).__name__}")
        # The source path describes where an object was loaded from, not where it goes.
        source = data.uns.pop(SOURCE_FILE_KEY, None)
        try:
            if data.isbacked and self._protocol == "file":
                copy_backed(data, self._save_path())
                return
            self._write_atomically(self._save_path(), lambda path: data.write_h5ad(path, **self._save_args))
        finally:
            if source is not None:
                data.uns[SOURCE_FILE_KEY] = source
