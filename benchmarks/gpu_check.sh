#!/usr/bin/env bash
# GPU check: every method's test-environment pipeline with device cuda, then one scGen
# epoch on the GPU against the CPU at the paper's batch size (32).
#
#   bash benchmarks/gpu_check.sh            # from the repository root, after the Quick start install
#
# Prints one line per pipeline and a JSON line with the epoch timings; exits non-zero at
# the first failure, or with status 2 when torch sees no CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEDRO_DISABLE_TELEMETRY=true

python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 2)" || {
    echo "gpu_check: torch sees no CUDA device; nothing to check" >&2
    exit 2
}
python -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| CUDA', torch.version.cuda)"

declare -A DEVICE_PARAMS=(
    [scgen]="scgen.training.device=cuda"
    [normae]="normae.training.device=cuda"
    [aif]="aif.training.device=cuda"
    [cscgan]="cscgan.training.device=cuda"
    [vae]="vae.cells.training.device=cuda,vae.binning.training.device=cuda"
)
for method in scgen normae aif cscgan vae; do
    start=$(date +%s)
    kedro run --env test --pipelines "$method" --params "${DEVICE_PARAMS[$method]}" > "/tmp/gpu_check_$method.log" 2>&1 || {
        echo "gpu_check: $method failed on cuda; last lines of /tmp/gpu_check_$method.log:" >&2
        tail -40 "/tmp/gpu_check_$method.log" >&2
        exit 1
    }
    # every training logs its device ("..., device cuda"): none may have fallen back to the CPU
    on_cuda=$(grep -c "device cuda" "/tmp/gpu_check_$method.log" || true)
    on_cpu=$(grep -c "device cpu" "/tmp/gpu_check_$method.log" || true)
    echo "$method: ok in $(( $(date +%s) - start )) s; trainings on cuda: $on_cuda, on cpu: $on_cpu"
    [ "$on_cpu" -eq 0 ] || { echo "gpu_check: $method trained on the CPU" >&2; exit 1; }
done

python - <<'EOF'
import json
import time

import scanpy as sc
import torch

from omicsgen.models import ScGen
from omicsgen.preprocessing.simulate import simulate_scrna_counts

adata = simulate_scrna_counts(n_cells=20_000, n_genes=2_000, n_cell_types=5, seed=0)
sc.pp.normalize_total(adata, target_sum=1e4)
sc.pp.log1p(adata)
ScGen.setup_anndata(adata, condition_key="condition", control="control", stimulated="stimulated", cell_type_key="cell_type")
seconds = {}
for device in ("cuda", "cpu"):
    model = ScGen(adata, {}, {}, {"max_epochs": 2, "patience": None, "batch_size": 32, "device": device,
                                  "progress": False, "checkpoint_every": None})
    model.train()
    seconds[device] = model.training_result.history[-1]["seconds"]  # the second epoch: warmed up
print(json.dumps({"scgen_epoch_seconds": seconds, "cells": 20_000, "genes": 2_000, "batch_size": 32,
                  "speedup": seconds["cpu"] / seconds["cuda"], "cpu_threads": torch.get_num_threads()}))
EOF
