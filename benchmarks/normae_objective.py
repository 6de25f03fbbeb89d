"""NormAE's adversarial settings side by side on one model input: for each variant, train
the CPU preset (conf/base) with the variant's plan/training values on top, then print how
well a linear probe finds the batch in the latent code and in the corrected data, and the
QC distance in a PCA of the corrected data (all on the model's standardised scale, which
is why the numbers differ slightly from metrics.json's intensity-scale ones).

The model inputs are the data-engineering outputs of a generalisation run, e.g.
``/tmp/omicsgen-generalisation/full/project/data/05_model_input/<dataset>/model_input.h5ad``.

    python benchmarks/normae_objective.py MODEL_INPUT.h5ad \\
        '{"paper": {"plan": {"encoder_objective": "maximise_adversary_loss", "lambda_batch_means": 0}},
          "default": {}}'
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anndata as ad
import torch
import yaml

from omicsgen.metrics.metabolomics import batch_accuracy, qc_pca_distance
from omicsgen.models.normae import NormAE

ROOT = Path(__file__).resolve().parents[1]


def preset() -> dict:
    """The NormAE section of conf/base (model, plan, training)."""
    section = yaml.safe_load((ROOT / "conf/base/parameters/normae.yml").read_text())["normae"]
    return {key: dict(section.get(key) or {}) for key in ("model", "plan", "training")}


def main() -> None:
    path, variants = sys.argv[1], json.loads(sys.argv[2])
    torch.set_num_threads(1)
    base = ad.read_h5ad(path)
    defaults = preset()
    for name, variant in variants.items():
        adata = base.copy()
        NormAE.setup_anndata(adata, batch_key="batch", order_key="injection_order", qc_key="is_qc")
        sections = {key: {**defaults[key], **variant.get(key, {})} for key in defaults}
        sections["training"] |= {"device": "cpu", "progress": False}
        start = time.perf_counter()
        model = NormAE(adata, **sections)
        model.train()
        out = model.correct()
        batches, is_qc = adata.obs["batch"].astype(str).to_numpy(), adata.obs["is_qc"].to_numpy(bool)
        corrected = out.layers["normae_corrected"]
        print(
            f"{name}: batch accuracy latent {batch_accuracy(out.obsm['X_normae'], batches):.3f}, "
            f"corrected {batch_accuracy(corrected, batches):.3f}; QC PCA distance {qc_pca_distance(corrected, is_qc):.2f}; "
            f"kept adversarial epoch {model.selected.get('adversarial_epoch')}; {time.perf_counter() - start:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
