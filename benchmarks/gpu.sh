#!/usr/bin/env bash
# One GPU session in under 10 minutes: model-only throughput (fp32/bf16/fp16 x batch sizes, eager
# and torch.compile) and end-to-end `analyze` throughput on a generated slide; prints one table.
#
#   bash benchmarks/gpu.sh [OUT_DIR]        # from the repository root, on a CUDA machine
#
# Needs PyTorch with CUDA, timm, tifffile, imagecodecs, openslide-python and openslide-bin. A GPU
# image that lacks some of them can get them as wheels in .whl/ (see benchmarks/README.md); they
# are installed into /tmp/site first. Figures land in OUT_DIR (default $OUT, else
# /tmp/chaoyang-gpu) as JSON and text; copy the final table into docs/performance.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-/tmp/chaoyang-gpu}}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
export CHAOYANG_BENCH_DIR="${CHAOYANG_BENCH_DIR:-/tmp/chaoyang-bench}"
PY="${PYTHON:-python3}"
SLIDE_SIDE="${SLIDE_SIDE:-60000}"   # ~7,000 tissue tiles of 512 px: several seconds at the target rate
BATCH="${BATCH:-256}"
WORKERS="${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}"  # leave a core for the consumer and one spare
t_start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - t_start )) s)"; }

if ls .whl/*.whl >/dev/null 2>&1; then
  step "installing carried wheels"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH=".:${PYTHONPATH:-}"

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT_DIR/gpu.txt"
echo "cores: $(nproc); readers: $WORKERS; batch: $BATCH; slide side: $SLIDE_SIDE"
"$PY" - <<'EOF' || { echo "missing packages: see benchmarks/README.md (GPU)"; exit 1; }
import importlib
for name in ("torch", "timm", "tifffile", "imagecodecs", "openslide", "psutil"):
    m = importlib.import_module(name)
    print(f"{name} {getattr(m, '__version__', '?')}")
import torch
assert torch.cuda.is_available(), "no CUDA device"
print("gpu:", torch.cuda.get_device_name(0), "bf16:", torch.cuda.is_bf16_supported())
EOF

# First, so that its JPEG encoding (on every core) does not disturb the GPU timings.
step "generating a ${SLIDE_SIDE} px slide"
timeout 200 "$PY" -c "from benchmarks.common import ensure_slide; print(ensure_slide(${SLIDE_SIDE}))" \
  > "$OUT_DIR/slide.txt" 2> "$OUT_DIR/slide.log" || { cat "$OUT_DIR/slide.log"; exit 1; }
SLIDE="$(tail -n 1 "$OUT_DIR/slide.txt")"

step "model only, eager: fp32 / bf16 / fp16 at batch 64, 128, 256"
timeout 150 "$PY" benchmarks/bench_model.py --device cuda --precisions fp32,bf16,fp16 --batch-sizes 64,128,256 \
  --compile no --seconds 2 --json "$OUT_DIR/model_eager.json" 2>&1 | tee "$OUT_DIR/model_eager.txt" | grep -v "^  {"

step "end to end on $SLIDE: bf16, batch $BATCH, $WORKERS readers (model only measured before and after)"
timeout 180 "$PY" benchmarks/bench_pipeline.py --model base --device cuda --precisions bf16 --batch-size "$BATCH" \
  --workers "$WORKERS" --slide "$SLIDE" --only model,ours --model-batches 20 --json "$OUT_DIR/e2e_bf16.json" \
  2>&1 | tee "$OUT_DIR/e2e_bf16.txt" | grep -v "^  {"

step "end to end, batch 128 and fp16 (same slide)"
timeout 120 "$PY" benchmarks/bench_pipeline.py --model base --device cuda --precisions fp16,bf16 --batch-size 128 \
  --workers "$WORKERS" --slide "$SLIDE" --only ours --json "$OUT_DIR/e2e_b128.json" \
  2>&1 | tee "$OUT_DIR/e2e_b128.txt" | grep -v "^  {"

step "model only, torch.compile at batch $BATCH (compile time reported)"
timeout 240 "$PY" benchmarks/bench_model.py --device cuda --precisions bf16,fp16,fp32 --batch-sizes "$BATCH" \
  --compile yes --seconds 2 --json "$OUT_DIR/model_compiled.json" 2>&1 | tee "$OUT_DIR/model_compiled.txt" \
  | grep -v "^  {"

step "summary"
"$PY" benchmarks/gpu_table.py "$OUT_DIR" | tee "$OUT_DIR/summary.md"
echo "total $(( $(date +%s) - t_start )) s"
