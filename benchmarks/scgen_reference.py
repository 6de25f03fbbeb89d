"""Run the reference scGen (theislab/scgen on scvi-tools 1.4) for ``bench_scgen.py``.

Runs inside the reference's own virtual environment (see benchmarks/scgen.md); it does not
import omicsgen. Input: an .h5ad of training cells (log-normalised X, obs condition /
cell_type) and an .h5ad of the control cells to predict. Output: a JSON with per-epoch
seconds and peak memory, and (unless ``--timing-only``) an .h5ad of predicted cells.

The one run-time patch: scvi-tools 1.4 reads the encoder's outputs as ``qzm``/``qzv`` when
computing latent representations, while scGen's module returns ``qz_m``/``qz_v``; we add
the two aliases so the reference's own ``predict`` works.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import anndata as ad
import numpy as np
import torch


def patch_reference():
    from scgen._scgenvae import SCGENVAE

    original = SCGENVAE.inference

    def inference(self, *args, **kwargs):
        outputs = original(self, *args, **kwargs)
        outputs["qzm"], outputs["qzv"] = outputs["qz_m"], outputs["qz_v"]
        return outputs

    SCGENVAE.inference = inference


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--predict", required=True)
    parser.add_argument("--out", required=True, help="prefix of the output .json/.h5ad")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--own-defaults", action="store_true",
                        help="train as the scGen perturbation tutorial does (100 epochs, batch 32, early stopping, patience 25)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import lightning.pytorch as pl
    import scgen
    import scvi

    patch_reference()
    scvi.settings.seed = args.seed
    train = ad.read_h5ad(args.train)
    to_predict = ad.read_h5ad(args.predict)

    epoch_seconds: list[float] = []
    epoch_cpu_seconds: list[float] = []

    class EpochTimer(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

        def on_train_epoch_end(self, trainer, module):
            epoch_seconds.append(time.perf_counter() - self.start)
            epoch_cpu_seconds.append(time.process_time() - self.cpu_start)

    scgen.SCGEN.setup_anndata(train, batch_key="condition", labels_key="cell_type")
    model = scgen.SCGEN(train)  # n_hidden 800, n_latent 100, 2 layers, dropout 0.2
    start = time.perf_counter()
    if args.own_defaults:  # theislab/scgen's docs/tutorials/scgen_perturbation_prediction.ipynb
        schedule = {"max_epochs": 100, "batch_size": 32, "early_stopping": True, "early_stopping_patience": 25}
    else:  # every given cell trains (the split is made by the caller), fixed epochs
        schedule = {"max_epochs": args.epochs, "batch_size": args.batch_size, "train_size": 1.0, "early_stopping": False}
    model.train(
        **schedule,
        accelerator="cpu",
        callbacks=[EpochTimer()],
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
    )
    seconds = time.perf_counter() - start
    record = {
        "epoch_seconds": epoch_seconds,
        "epoch_cpu_seconds": epoch_cpu_seconds,
        "seconds": seconds,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "scvi_tools": scvi.__version__,
    }
    if not args.timing_only:
        np.random.seed(args.seed)
        predicted, delta = model.predict(
            ctrl_key="control", stim_key="stimulated", adata_to_predict=to_predict
        )
        predicted.X = np.asarray(predicted.X, dtype=np.float32)
        predicted.write_h5ad(args.out + ".h5ad")
        record["delta_norm"] = float(np.linalg.norm(delta))
    with open(args.out + ".json", "w") as handle:
        json.dump(record, handle)


if __name__ == "__main__":
    main()
