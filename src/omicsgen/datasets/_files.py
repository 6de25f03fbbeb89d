"""What the file-backed omicsgen datasets share: fsspec paths, versioning, atomic writes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import (
    AbstractDataset,
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)


class FileDataset(AbstractDataset):
    """An unversioned dataset of one file on any fsspec filesystem."""

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self.metadata = metadata

    @property
    def _path(self) -> str:
        return get_filepath_str(self._filepath, self._protocol)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol}

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _make_parent_dir(self) -> None:
        self._fs.makedirs(get_filepath_str(self._filepath.parent, self._protocol), exist_ok=True)


class VersionedFileDataset(AbstractVersionedDataset):
    """A versioned dataset of one file on any fsspec filesystem."""

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _load_path(self) -> str:
        return get_filepath_str(self._get_load_path(), self._protocol)

    def _save_path(self) -> str:
        return get_filepath_str(self._get_save_path(), self._protocol)

    def _exists(self) -> bool:
        try:
            load_path = self._load_path()
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _release(self) -> None:
        super()._release()
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def _write_atomically(self, save_path: str, write: Callable[[str], None]) -> None:
        """Call ``write(local_path)`` on a temporary file, then move it into place.

        Locally the temporary file sits next to the target and ``os.replace`` swaps it in,
        so a crash leaves the previous file intact. Remotely the file is uploaded under a
        temporary name first and then renamed.
        """
        if self._protocol == "file":
            target = Path(save_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(handle)
            try:
                write(tmp_name)
                os.replace(tmp_name, target)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        else:
            with tempfile.TemporaryDirectory() as tmp_dir:
                local = str(Path(tmp_dir) / Path(save_path).name)
                write(local)
                partial = f"{save_path}.partial"
                self._fs.put_file(local, partial)
                self._fs.mv(partial, save_path)
        self._fs.invalidate_cache(save_path)
