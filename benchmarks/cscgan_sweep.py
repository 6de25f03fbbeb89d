"""Quick cscgan experiment through the Python API (no pipeline): the full Kang data, or ``--data``.

Trains the default CPU preset with the given overrides, generates 300 cells per type and
prints the real-vs-generated / real-vs-real RF AUC overall and per type; ``--recal 1`` also
re-estimates the generator's batch-norm statistics after training and scores again.
"""
import argparse
import json
import os
import time

import anndata as ad
import torch

from omicsgen.metrics.generation import evaluate_generation
from omicsgen.models.cscgan import CscGAN
from omicsgen.preprocessing.cscgan import preprocess_counts

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=300)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--final-lr", type=float, default=1e-4)
p.add_argument("--critic", default="256,256,128")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--genes", type=int, default=500)
p.add_argument("--generator", default="256,512,1024")
p.add_argument("--latent", type=int, default=128)
p.add_argument("--data", default="data/01_raw/kang_pbmc_ifnb/kang_pbmc_ifnb.h5ad", help="h5ad of raw counts")
p.add_argument("--counts-layer", default="counts", help="layer of raw counts; 'X' = X holds them")
p.add_argument("--type-key", default="cell_type")
p.add_argument("--recal", type=int, default=0)
p.add_argument("--sample-counts", type=int, default=0,
               help="1: also score generated cells re-drawn as counts (multinomial at a real library size of their type)")
p.add_argument("--ncritic", type=int, default=5)
p.add_argument("--tag", default="x")
p.add_argument("--seed", type=int, default=0, help="training and generation seed")
a = p.parse_args()
name = os.path.splitext(os.path.basename(a.data))[0]
path = f"/tmp/cscgan_cells_{name}_{a.genes}.h5ad"
if not os.path.exists(path):
    raw = ad.read_h5ad(a.data)
    layer = None if a.counts_layer == "X" else a.counts_layer
    cells = preprocess_counts(raw, layer, a.type_key, 3, 10, 20000, a.genes or None, 50)
    cells.obs["cell_type"] = cells.obs[a.type_key]
    cells.uns.clear()
    cells.write_h5ad(path)
cells = ad.read_h5ad(path)
t0, w0 = time.process_time(), time.time()
CscGAN.setup_anndata(cells, cell_type_key="cell_type")
model = CscGAN(cells, model={"latent_dim": a.latent, "generator_layers": [int(x) for x in a.generator.split(",")], "critic_layers": [int(x) for x in a.critic.split(",")], "critic_input": "log1p"},
    plan={"learning_rate": a.lr, "final_learning_rate": a.final_lr, "n_critic": a.ncritic},
    training={"generator_steps": a.steps, "batch_size": a.batch, "seed": a.seed, "device": "cpu", "progress": False})
res = model.train()
tt, tw = time.process_time() - t0, time.time() - w0
labels = cells.obs["cell_type"].astype(str).to_numpy()
out = {"args": vars(a), "train_cpu_s": tt, "train_wall_s": tw}
def as_counts(generated):
    """Each generated cell's profile drawn as counts at the library size (in the modelled
    genes) of a random real cell of its type, then scaled back to the model's total."""
    import numpy as np
    from scipy import sparse

    raw = ad.read_h5ad(a.data)[cells.obs_names, cells.var_names]
    library = np.asarray((raw.X if a.counts_layer == "X" else raw.layers[a.counts_layer]).sum(axis=1)).ravel()
    rng = np.random.default_rng(a.seed)
    values = generated.X.toarray().astype(np.float64)
    kinds = generated.obs["cell_type"].astype(str).to_numpy()
    drawn = np.zeros_like(values)
    for i, (row, kind) in enumerate(zip(values, kinds, strict=True)):
        counts = rng.multinomial(int(rng.choice(library[labels == kind])), row / row.sum())
        drawn[i] = counts * (20000.0 / max(counts.sum(), 1))
    copy = generated.copy()
    copy.X = sparse.csr_matrix(drawn.astype(np.float32))
    return copy


def ev(tag, transform=None):
    types = sorted(set(labels))
    generated = model.generate({t: 300 for t in types}, seed=a.seed)
    if transform is not None:
        generated = transform(generated)
    m = evaluate_generation(cells.X.toarray(), labels, generated.X.toarray(), generated.obs["cell_type"].astype(str).to_numpy(), seed=0)
    out[tag] = {"overall": round(m["overall"]["real_vs_generated"]["classifier_auc"], 3),
                "control": round(m["overall"]["real_vs_real"]["classifier_auc"], 3),
                **{t: round(v["real_vs_generated"]["classifier_auc"], 3) for t, v in m["per_cell_type"].items()}}
    print(tag, out[tag], flush=True)
ev("eval_bn")
if a.sample_counts:
    ev("eval_counts", as_counts)
if a.recal:
    from omicsgen.models.cscgan import ConditionalBatchNorm
    g = model.modules["generator"]
    for m_ in g.modules():  # cumulative average over fresh batches of sampled labels
        if isinstance(m_, ConditionalBatchNorm):
            m_.norm.reset_running_stats()
            m_.norm.momentum = None
    g.train()
    probs = torch.tensor(model.state["label_probabilities"])
    torch.manual_seed(1)
    with torch.no_grad():
        for _ in range(50):
            lab = torch.multinomial(probs, 512, replacement=True)
            g(torch.randn(512, model.model_config.latent_dim), lab)
    ev("recal_bn")
out["last_epoch"] = res.history[-1] if res.history else None
print(json.dumps(out, default=str))
