"""``AnnDataDataset``: h5ad files in the Kedro catalog.

Saves are atomic: the AnnData is written to a temporary file next to the target
(or locally, for remote filesystems) and only then moved into place, so a crash in
the middle of a save leaves the previous file intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import anndata as ad
import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

#: ``uns`` key holding the path the AnnData was loaded from, so that validation
#: errors can name the file.
SOURCE_FILE_KEY = "source_file"


class AnnDataDataset(AbstractVersionedDataset[ad.AnnData, ad.AnnData]):
    """Load and save :class:`anndata.AnnData` objects as h5ad through fsspec.

    Example catalog entry::

        kang.raw:
          type: omicsgen.datasets.AnnDataDataset
          filepath: data/01_raw/kang_pbmc_ifnb/kang_pbmc_ifnb.h5ad
          backed: null          # or "r" to keep X on disk (local files only)
          save_args:
            compression: gzip

    Args:
        filepath: Path or URL of the h5ad file (any fsspec protocol).
        backed: ``None`` loads everything into memory; ``"r"`` opens X backed
            (read only, local files only).
        load_args: Extra keyword arguments for :func:`anndata.read_h5ad`.
        save_args: Extra keyword arguments for :meth:`anndata.AnnData.write_h5ad`.
        version: Kedro versioning.
        credentials, fs_args: Passed to the fsspec filesystem.
        metadata: Free-form metadata (kedro-viz reads ``kedro-viz.layer``).
    """

    DEFAULT_SAVE_ARGS: dict[str, Any] = {}

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
        protocol, path = get_protocol_and_path(filepath, version)
        if backed not in (None, "r", "r+"):
            raise DatasetError(f"AnnDataDataset: backed must be null, 'r' or 'r+', got {backed!r}")
        if backed and protocol != "file":
            raise DatasetError(
                f"AnnDataDataset: backed loading needs a local file, not '{filepath}'"
            )
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self._backed = backed
        self._load_args = dict(load_args or {})
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

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
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.exists(load_path):
            raise DatasetError(f"h5ad file not found: '{load_path}'")
        try:
            if self._protocol == "file":
                adata = ad.read_h5ad(load_path, backed=self._backed, **self._load_args)
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
            raise DatasetError(
                f"AnnDataDataset can only save AnnData objects, got {type(data).__name__}"
            )
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        # The source path describes where an object was loaded from, not where it goes.
        uns = data.uns
        source = uns.pop(SOURCE_FILE_KEY, None)
        try:
            if self._protocol == "file":
                self._save_local_atomically(data, Path(save_path))
            else:
                self._save_remote(data, save_path)
        finally:
            if source is not None:
                uns[SOURCE_FILE_KEY] = source
        self._invalidate_cache()

    def _save_local_atomically(self, data: ad.AnnData, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        try:
            data.write_h5ad(tmp_name, **self._save_args)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def _save_remote(self, data: ad.AnnData, save_path: str) -> None:
        with tempfile.TemporaryDirectory() as tmp_dir:
            local = Path(tmp_dir) / "data.h5ad"
            data.write_h5ad(local, **self._save_args)
            # Upload under a temporary name first: a failed upload never replaces the target.
            partial = f"{save_path}.partial"
            self._fs.put_file(str(local), partial)
            self._fs.mv(partial, save_path)

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        filepath = get_filepath_str(self._filepath, self._protocol)
        self._fs.invalidate_cache(filepath)
