#!/usr/bin/env bash
# The GPU record, as one script: ≤ 10 minutes on one H100/H200-class GPU (run from the repository root).
#   bash benchmarks/gpu_record.sh            # results in $OUT if set, else ./gpu_record
# 1. The pretraining step: S2MAE and SIGMAE ViT-B, 128 px, 12 bands, batch 256, bf16 autocast, fused AdamW;
#    samples/s, fraction of the bf16 matmul peak measured in the same run, S2MAE / PrithviMAE at equal tokens,
#    step and peak memory.
# 2. Host syncs of a training step, with CUDA's own count (torch.cuda.set_sync_debug_mode).
# 3. Recompiles with compiled blocks (TORCH_LOGS=recompiles), S2MAE and SIGMAE.
# 4. The input pipeline: fake SSL4EO-S12 files in the real layout, 16 workers, against the ViT-B step rate.
# Each part has its own time limit, so a slow part cannot take the others' time; every output is kept.
set -uo pipefail
out=${OUT:-gpu_record}
mkdir -p "$out"
{
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
    nproc
} 2>&1 | tee "$out/machine.txt"

timeout 240 python benchmarks/pretrain_throughput.py --device cuda --modes bf16 --batch-size 256 --extra sigmae \
    --windows 5 --steps 5 --warmup 3 --json "$out/pretrain_throughput.json" 2>&1 | tee "$out/pretrain_throughput.txt"

timeout 60 python benchmarks/host_syncs.py --device cuda --json "$out/host_syncs.json" 2>&1 | tee "$out/host_syncs.txt"

TORCH_LOGS=recompiles timeout 120 python benchmarks/pretrain_throughput.py --device cuda --modes bf16 --batch-size 256 \
    --extra sigmae --compile ours --windows 2 --steps 3 --warmup 2 --json "$out/pretrain_throughput_compiled.json" \
    2>&1 | tee "$out/pretrain_throughput_compiled.txt"

timeout 150 python benchmarks/data_throughput.py --corpus ssl4eo --device cuda --locations 2048 --batch-size 256 \
    --batches 12 --workers 16 --size base --train-steps 10 --train-workers 16 --json "$out/data_throughput.json" \
    2>&1 | tee "$out/data_throughput.txt"
