"""cscgan modelling: scGAN preprocessing → train → generate; the augmentation experiment."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.cscgan import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(nodes.prepare_cells, ["kang.primary", "params:cscgan"], "cells", name="prepare_cells"),
            node(nodes.train_model, ["cells", "params:cscgan"], ["model", "training"], name="train_model"),
            node(nodes.generate, ["model", "cells", "params:cscgan"], "generated", name="generate_cells"),
            node(
                nodes.split_for_augmentation,
                ["cells", "params:cscgan"],
                ["augmentation_train", "augmentation_test"],
                name="split_for_augmentation",
            ),
            node(
                nodes.train_augmentation_model,
                ["augmentation_train", "params:cscgan"],
                ["augmentation_model", "augmentation_training"],
                name="train_augmentation_model",
            ),
            node(
                nodes.generate_rare_cells,
                ["augmentation_model", "augmentation_train", "params:cscgan"],
                "augmentation_generated",
                name="generate_rare_cells",
            ),
            node(
                nodes.rare_type_f1,
                ["augmentation_train", "augmentation_test", "augmentation_generated", "params:cscgan"],
                "augmentation_metrics",
                name="rare_type_f1",
            ),
        ],
        namespace="cscgan",
        inputs={"kang.primary"},
        parameters={"params:cscgan"},
    )
