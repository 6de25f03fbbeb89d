"""cscgan modelling: scGAN preprocessing → train → generate; the augmentation experiment."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.cscgan import nodes


def create_pipeline(kind: str = "perturbation") -> Pipeline:
    return pipeline(
        [
            node(nodes.prepare_cells, ["primary", "settings"], "cells", name="prepare_cells"),
            node(nodes.train_model, ["cells", "settings"], ["model", "training"], name="train_model"),
            node(nodes.generate, ["model", "cells", "settings"], "generated", name="generate_cells"),
            node(
                nodes.split_for_augmentation,
                ["cells", "settings"],
                ["augmentation_train", "augmentation_test"],
                name="split_for_augmentation",
            ),
            node(
                nodes.train_augmentation_model,
                ["augmentation_train", "settings"],
                ["augmentation_model", "augmentation_training"],
                name="train_augmentation_model",
            ),
            node(
                nodes.generate_rare_cells,
                ["augmentation_model", "augmentation_train", "settings"],
                "augmentation_generated",
                name="generate_rare_cells",
            ),
            node(
                nodes.rare_type_f1,
                ["augmentation_train", "augmentation_test", "augmentation_generated", "settings"],
                "augmentation_metrics",
                name="rare_type_f1",
            ),
        ]
    )
