"""Data engineering: one template per kind of data, instantiated per declared dataset.

Every dataset of ``datasets.yml`` (``omicsgen.registry``) gets the template of its kind
in its own namespace: it reads ``<name>.raw`` (metabolomics: ``<name>.raw_data`` and
``<name>.raw_info``) and writes ``<name>.filtered`` (02_intermediate), ``<name>.primary``
(03_primary) and ``<name>.model_input`` (05_model_input). Defaults per kind live in
``data_engineering.yml``; a dataset overrides them in its entry's ``preprocessing``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.data_engineering import nodes


def single_cell_template() -> Pipeline:
    """raw h5ad → validated (counts found) → (subsampled) → QC-filtered → normalised → HVG → split."""
    return pipeline(
        [
            node(nodes.validate_cells, ["raw", "settings"], "validated", name="validate"),
            node(nodes.subsample, ["validated", "settings"], "subsampled", name="subsample"),
            node(nodes.filter_cells_and_genes, ["subsampled", "settings"], "filtered", name="qc_filter"),
            node(nodes.normalise, ["filtered", "settings"], "normalised", name="normalise"),
            node(nodes.select_genes, ["normalised", "settings"], "primary", name="select_highly_variable_genes"),
            node(nodes.split, ["primary", "settings"], "model_input", name="split_train_validation"),
        ]
    )


def metabolomics_template() -> Pipeline:
    """data.csv + info.csv → validated samples × features → filtered → imputed → scaled."""
    return pipeline(
        [
            node(
                nodes.build_metabolomics_table,
                ["raw_data", "raw_info", "settings"],
                "validated",
                name="validate_and_join_tables",
            ),
            node(nodes.filter_features, ["validated", "settings"], "filtered", name="filter_features"),
            node(nodes.impute_missing, "filtered", "primary", name="impute_missing_values"),
            node(nodes.scale_features, ["primary", "settings"], "model_input", name="scale_features"),
        ]
    )


TEMPLATES = {"single_cell": single_cell_template, "metabolomics": metabolomics_template}


def create_dataset_pipeline(dataset: str) -> Pipeline:
    """The template of ``dataset``'s kind, in namespace ``dataset``. Sequences need no data
    engineering (the VAE reads the FASTA itself)."""
    from omicsgen.registry import active_registry

    kind = active_registry()[dataset].kind
    template = TEMPLATES.get(nodes.TEMPLATE_OF_KIND[kind])
    if template is None:
        return Pipeline([])
    settings = node(
        nodes.settings_of(dataset),
        ["params:data_engineering", f"params:datasets.{dataset}"],
        "settings",
        name="dataset_settings",
    )
    return pipeline(
        [settings, template()],
        namespace=dataset,
        parameters={"params:data_engineering", f"params:datasets.{dataset}"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    from omicsgen.registry import active_registry

    return sum((create_dataset_pipeline(name) for name in active_registry()), start=Pipeline([]))
