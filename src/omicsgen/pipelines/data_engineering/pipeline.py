"""Data engineering: one template per kind of data, instantiated per dataset namespace.

Every dataset namespace (``kang``, ``pbmc_batches``, ``mtbls79``) reads ``<ns>.raw`` and
writes ``<ns>.filtered`` (02_intermediate), ``<ns>.primary`` (03_primary) and
``<ns>.model_input`` (05_model_input); parameters live under ``<ns>:`` in
``conf/base/parameters/data_engineering.yml``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.data_engineering import nodes

#: dataset namespace → kind of data (which template builds it)
DATASETS = {"kang": "perturbation", "pbmc_batches": "single_cell", "mtbls79": "metabolomics"}


def single_cell_template(perturbation: bool = False) -> Pipeline:
    """raw h5ad → validated → (subsampled) → QC-filtered → normalised → HVG → split, balanced."""
    steps = [
        node(nodes.validate_cells, ["raw", "params:validation"], "validated", name="validate"),
        node(nodes.subsample, ["validated", "params:subsample"], "subsampled", name="subsample"),
        node(nodes.filter_cells_and_genes, ["subsampled", "params:qc"], "filtered", name="qc_filter"),
        node(nodes.normalise, ["filtered", "params:normalisation"], "normalised", name="normalise"),
        node(nodes.select_genes, ["normalised", "params:hvg"], "primary", name="select_highly_variable_genes"),
        node(nodes.split, ["primary", "params:split"], "model_input", name="split_train_validation"),
        node(nodes.balance, ["model_input", "params:balance"], "balanced", name="balance_by_cell_type"),
    ]
    if perturbation:
        steps.append(
            node(
                nodes.hold_out_perturbed_cells,
                ["model_input", "params:perturbation"],
                ["perturbation_train", "perturbation_holdout"],
                name="hold_out_perturbed_cells",
            )
        )
    return pipeline(steps)


def metabolomics_template() -> Pipeline:
    """data.csv + info.csv → validated samples × features → filtered → imputed → scaled."""
    return pipeline(
        [
            node(
                nodes.build_metabolomics_table,
                ["raw_data", "raw_info", "params:table"],
                "validated",
                name="validate_and_join_tables",
            ),
            node(nodes.filter_features, ["validated", "params:feature_filter"], "filtered", name="filter_features"),
            node(nodes.impute_missing, "filtered", "primary", name="impute_half_minimum"),
            node(nodes.scale_features, ["primary", "params:scaling"], "model_input", name="scale_features"),
        ]
    )


def create_dataset_pipeline(dataset: str) -> Pipeline:
    kind = DATASETS[dataset]
    template = (
        metabolomics_template() if kind == "metabolomics" else single_cell_template(kind == "perturbation")
    )
    return pipeline(template, namespace=dataset)


def create_pipeline(**kwargs) -> Pipeline:
    return sum((create_dataset_pipeline(dataset) for dataset in DATASETS), start=Pipeline([]))
