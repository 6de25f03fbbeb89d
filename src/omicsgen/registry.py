"""The dataset registry: every dataset a run can use, declared once in ``datasets.yml``.

``conf/base/datasets.yml`` declares the shipped datasets; a user adds theirs in
``conf/local/datasets.yml`` (or any environment's), with no Python and no catalog edit::

    datasets:
      my_study:
        kind: perturbation            # perturbation | scrna_batches | metabolomics | cell_table | sequences
        file: /data/my_study.h5ad
        keys: {condition: treatment, control: ctrl, stimulated: IFN, cell_type: celltype}

The registry decides which data-engineering template builds a dataset (its ``kind``), which
methods run on it (every method of its kind unless ``methods`` lists others) and where
its outputs go (namespace ``<dataset>.<method>``, paths ``data/<layer>/<dataset>/<method>/``).

The file is read as part of the parameters (``params:datasets.<name>``), so nodes see the
same entries that built the pipelines, and ``--params datasets.<name>.file=…`` works.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DatasetRegistryError(ValueError):
    """A dataset entry that cannot be used; the message names the entry and the field."""


#: kind → the methods that run on it by default, and the methods that can run on it
KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "perturbation": {"default": ("scgen", "cscgan", "vae"), "allowed": ("scgen", "cscgan", "vae")},
    "scrna_batches": {"default": ("aif",), "allowed": ("aif", "cscgan", "vae")},
    "cell_table": {"default": ("vae",), "allowed": ("vae", "cscgan")},
    "metabolomics": {"default": ("normae",), "allowed": ("normae",)},
    "sequences": {"default": ("vae",), "allowed": ("vae",)},
}

#: kind → the files it needs (``file`` for one, ``files: {data, info}`` for metabolomics)
FILES = {"metabolomics": ("data", "info")}

#: kind → default keys; a user writes only the ones whose columns are named differently
DEFAULT_KEYS: dict[str, dict[str, Any]] = {
    "perturbation": {
        "condition": "condition", "control": "control", "stimulated": "stimulated",
        "cell_type": "cell_type", "counts": "auto",
    },
    "scrna_batches": {"batch": "batch", "cell_type": "cell_type", "counts": "auto"},
    "cell_table": {"cell_type": "cell_type", "counts": "auto"},
    "metabolomics": {
        "feature": "feature", "sample": "sample_id", "batch": "batch", "class": "class",
        "injection_order": "injection_order", "qc_label": "QC",
    },
    "sequences": {"label_pattern": r"source=(\S+)"},
}  # fmt: skip


@dataclass(frozen=True)
class DatasetSpec:
    """One declared dataset, with defaults filled in and paths made absolute."""

    name: str
    kind: str
    files: dict[str, str]
    keys: dict[str, Any]
    methods: tuple[str, ...]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def file(self) -> str:
        """The single input file (h5ad, CSV or FASTA); metabolomics has ``files``."""
        return self.files.get("file") or next(iter(self.files.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "files": dict(self.files), "keys": dict(self.keys),
            "methods": list(self.methods), "preprocessing": copy.deepcopy(self.preprocessing),
            "description": self.description,
        }  # fmt: skip


def _absolute(path: str, project_path: Path) -> str:
    expanded = Path(os.path.expanduser(str(path)))
    return str(expanded if expanded.is_absolute() else (project_path / expanded))


def _as_list(value: Any) -> list[str]:
    """A list parameter also given as one string (``--params`` cannot pass YAML lists):
    ``"a;b"`` → ``["a", "b"]``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return [str(v) for v in value]


def parse_entry(name: str, entry: Mapping[str, Any], project_path: Path) -> DatasetSpec:
    where = f"datasets.{name}"
    if not isinstance(entry, Mapping):
        raise DatasetRegistryError(f"{where} must be a mapping with 'kind' and 'file', got {entry!r}")
    unknown = sorted(set(entry) - {"kind", "file", "files", "keys", "methods", "preprocessing", "description"})
    if unknown:
        raise DatasetRegistryError(
            f"{where}: unknown field(s) {unknown}; allowed: kind, file (files for metabolomics), keys, "
            "methods, preprocessing, description"
        )
    kind = entry.get("kind")
    if kind not in KINDS:
        raise DatasetRegistryError(f"{where}.kind is {kind!r}; it must be one of {sorted(KINDS)}")
    if kind in FILES:
        files = entry.get("files") or {}
        missing = [f for f in FILES[kind] if not files.get(f)]
        if missing or not isinstance(files, Mapping):
            raise DatasetRegistryError(
                f"{where}: a {kind} dataset needs files: {{{', '.join(f'{f}: <path>' for f in FILES[kind])}}}; "
                f"missing {missing}"
            )
        files = {f: _absolute(files[f], project_path) for f in FILES[kind]}
    else:
        if not entry.get("file"):
            raise DatasetRegistryError(f"{where}: 'file' (the path to the data) is not set")
        files = {"file": _absolute(entry["file"], project_path)}
    keys = {**DEFAULT_KEYS[kind], **(entry.get("keys") or {})}
    if "qc_label" in keys:
        keys["qc_label"] = _as_list(keys["qc_label"])
    unknown_keys = sorted(set(keys) - set(DEFAULT_KEYS[kind]))
    if unknown_keys:
        raise DatasetRegistryError(
            f"{where}.keys: unknown key(s) {unknown_keys} for a {kind} dataset; "
            f"allowed: {sorted(DEFAULT_KEYS[kind])}"
        )
    methods = tuple(_as_list(entry.get("methods"))) or KINDS[kind]["default"]
    not_allowed = [m for m in methods if m not in KINDS[kind]["allowed"]]
    if not_allowed:
        raise DatasetRegistryError(
            f"{where}.methods: {not_allowed} cannot run on a {kind} dataset; "
            f"choose from {list(KINDS[kind]['allowed'])}"
        )
    return DatasetSpec(
        name=str(name), kind=kind, files=files, keys=keys, methods=methods,
        preprocessing=dict(entry.get("preprocessing") or {}), description=str(entry.get("description") or ""),
    )  # fmt: skip


def parse_registry(entries: Mapping[str, Any] | None, project_path: Path | str) -> dict[str, DatasetSpec]:
    """Every ``datasets:`` entry as a :class:`DatasetSpec` (entries set to null are dropped,
    so ``conf/local`` can switch a shipped dataset off with ``kang: null``)."""
    project_path = Path(project_path)
    specs = {}
    for name, entry in (entries or {}).items():
        if entry is None:
            continue
        if "." in str(name):
            raise DatasetRegistryError(f"datasets.{name}: a dataset name cannot contain '.' (it is a namespace)")
        specs[str(name)] = parse_entry(str(name), entry, project_path)
    return specs


# The registry in force, with the parameters it was read with. A Kedro run sets it from
# its own environment's configuration (``DatasetRegistryHook``) before the pipelines are
# built; outside a run (``kedro registry list``, ``kedro viz``) it is read from the project
# in the working directory.
_active: tuple[dict[str, DatasetSpec], dict[str, Any], Path] | None = None
#: the environment's output root (``data_root`` in globals.yml), relative to the project
_data_root: str = "data"


def activate(
    specs: dict[str, DatasetSpec],
    parameters: Mapping[str, Any] | None = None,
    project_path: Path | str = ".",
    data_root: str | None = None,
) -> bool:
    """Make ``specs`` the registry in force; True when that changed it or the methods'
    ``datasets`` parameters."""
    global _active, _data_root
    _data_root = str(data_root or "data")
    selection = {
        k: {"datasets": v.get("datasets"), "apply": dict(v.get("apply") or {})}
        for k, v in (parameters or {}).items()
        if isinstance(v, Mapping)
    }
    state = (specs, selection, Path(project_path))
    changed = _active != state
    _active = state
    return changed


def spec_of(name: str, entry: Mapping[str, Any]) -> DatasetSpec:
    """A dataset's entry (as a node receives it, ``params:datasets.<name>``) parsed
    against the project of the registry in force."""
    active_registry()
    return parse_entry(name, entry, _active[2])


def _project_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "conf").is_dir():
            return folder
    return start


def _config_loader(project_path: Path | str | None, env: str | None) -> tuple[Path, Any]:
    """A project's configuration (base + ``env``, default ``$KEDRO_ENV`` or ``local``), as a
    Kedro run reads it."""
    from kedro.config import OmegaConfigLoader

    from omicsgen.settings import CONFIG_LOADER_ARGS

    root = _project_root(Path(project_path or Path.cwd()).resolve())
    args = {k: v for k, v in CONFIG_LOADER_ARGS.items() if k != "default_run_env"}
    loader = OmegaConfigLoader(
        conf_source=str(root / "conf"), env=env or os.environ.get("KEDRO_ENV") or "local", **args
    )
    return root, loader


def read_parameters(project_path: Path | str | None = None, env: str | None = None) -> tuple[Path, dict[str, Any]]:
    """A project's parameters, as a Kedro run of ``env`` reads them."""
    root, loader = _config_loader(project_path, env)
    return root, loader["parameters"]


def activate_project(project_path: Path | str | None = None, env: str | None = None) -> dict[str, DatasetSpec]:
    """Put a project's registry (base + ``env``) in force, as a Kedro run of it would."""
    root, loader = _config_loader(project_path, env)
    parameters = loader["parameters"]
    data_root = loader["globals"].get("data_root", "data")
    activate(parse_registry(parameters.get("datasets"), root), parameters, root, data_root)
    return dict(_active[0])


def active_registry() -> dict[str, DatasetSpec]:
    if _active is None:
        activate_project()
    return dict(_active[0])


def datasets_for(method: str) -> list[str]:
    """The declared datasets ``method`` runs on: those whose entry selects it (``methods``,
    default: every method of its kind), or the ones the method parameter
    ``<method>.datasets`` lists."""
    registry = active_registry()
    selection = _active[1].get(method, {}).get("datasets")
    if selection in (None, "auto"):
        return [name for name, spec in registry.items() if method in spec.methods]
    wanted = _as_list(selection)
    unknown = [d for d in wanted if d not in registry]
    if unknown:
        raise DatasetRegistryError(
            f"{method}.datasets names {unknown}, which datasets.yml does not declare; declared: {sorted(registry)}"
        )
    wrong = [d for d in wanted if method not in KINDS[registry[d].kind]["allowed"]]
    if wrong:
        raise DatasetRegistryError(
            f"{method}.datasets: {method} cannot run on {wrong} (kind {registry[wrong[0]].kind})"
        )
    return wanted


def apply_model_source(method: str, dataset: str) -> str:
    """The dataset whose saved ``method`` model ``<method>_apply`` applies to ``dataset``:
    ``<method>.apply.model_from`` (null: the dataset's own saved model)."""
    registry = active_registry()
    source = _active[1].get(method, {}).get("apply", {}).get("model_from") or dataset
    if source not in registry:
        raise DatasetRegistryError(
            f"{method}.apply.model_from is {source!r}, which datasets.yml does not declare; declared: {sorted(registry)}"
        )
    return str(source)


def data_root() -> Path:
    """The environment's output root (globals.yml ``data_root``), absolute."""
    active_registry()
    return _active[2] / _data_root


def output_dir(layer: str, dataset: str, method: str) -> Path:
    """Where a (dataset, method) run writes a layer's files, as the catalog places them."""
    return data_root() / layer / dataset / method
