#!/usr/bin/env bash
# The GPU measurements in one go, on a machine with torch, timm, huggingface_hub and safetensors:
# install what the recipes still need (fastai, accelerate, matplotlib, this package), run the
# throughput benchmark on all six networks, then one All-CNN-C run of the `report` schedule
# (100 epochs, the dataset resident on the GPU, bf16 autocast, channels_last), and leave
# everything under --out. Sized to finish well inside 15 minutes on an H100-class GPU.
#
#   bash benchmarks/gpu.sh --data DIR [--wheels DIR] [--out DIR] [--epochs N]
#   GPU_SH_TINY=1 bash benchmarks/gpu.sh --data DIR    # the same steps at toy size, on the CPU
#
# It installs into the Python that $PYTHON names (default: python on the PATH): point it at a
# virtual environment's python to leave the system one untouched.
#
#   --data DIR     folder with cifar10.tgz (else $ALLCONV_DATA); the machine needs no internet
#   --wheels DIR   install missing packages from the wheels in DIR only (pip --no-index)
#   --out DIR      results folder (default benchmarks/results/gpu-<date>)
#   --epochs N     epochs of the report run (default 100, the schedule's)
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DATA=${ALLCONV_DATA:-}
WHEELS=""
OUT="benchmarks/results/gpu-$(date +%Y%m%d-%H%M%S)"
EPOCHS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$DATA" ]]; then
  echo "gpu.sh: no data: pass --data DIR (a folder with cifar10.tgz) or set ALLCONV_DATA" >&2
  exit 2
fi
mkdir -p "$OUT"
log() { echo "[gpu.sh $(date +%H:%M:%S)] $*" | tee -a "$OUT/gpu.log"; }

# Install only what is missing: torch and its CUDA build must stay the machine's own, hence
# --no-deps for this package, whose other dependencies the machine already has.
missing=()
for spec in fastai:fastai accelerate:accelerate matplotlib:matplotlib; do
  module=${spec%%:*}
  "$PYTHON" -c "import $module" 2>/dev/null || missing+=("${spec##*:}")
done
# The machine's torch, torchvision and numpy are pinned as they are, so that no dependency of
# fastai's can pull another build (a CPU one, or one for another CUDA) over them.
"$PYTHON" - > "$OUT/constraints.txt" <<'PY'
import importlib.metadata as metadata
for name in ("torch", "torchvision", "numpy"):
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
PY
pip_args=(--constraint "$OUT/constraints.txt")
[[ -n "$WHEELS" ]] && pip_args+=(--no-index --find-links "$WHEELS")
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]} into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  "$PYTHON" -m pip install -q "${pip_args[@]}" "${missing[@]}" 2>&1 | tee -a "$OUT/gpu.log"
fi
if ! "$PYTHON" -c "import allconv_zoo" 2>/dev/null; then
  log "installing allconv_zoo from $(pwd)"
  "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tee -a "$OUT/gpu.log" \
    || export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PYTHON" - <<'EOF' | tee -a "$OUT/gpu.log"
import torch, timm, fastai, allconv_zoo
cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA"
print(f"torch {torch.__version__}, timm {timm.__version__}, fastai {fastai.__version__}: {cuda}")
EOF

if [[ -n "${GPU_SH_TINY:-}" ]]; then
  # The code paths only, on the CPU: tiny subsets and one epoch.
  bench_args=(--quick --tiny --archs strided_cnn_c --device cpu)
  train_args=(--epochs "${EPOCHS:-1}" --limit 64 --bs 32 --device cpu)
else
  bench_args=(--repeats 3 --device cuda)
  train_args=(--device cuda)
  [[ -n "$EPOCHS" ]] && train_args+=(--epochs "$EPOCHS")
fi

log "throughput benchmark -> $OUT/throughput"
# fastai's progress bars go to the log only; sed, unlike grep -v, cannot fail the pipeline.
"$PYTHON" benchmarks/throughput.py --data "$DATA" --out "$OUT/throughput" "${bench_args[@]}" \
  2>&1 | tee -a "$OUT/gpu.log" | sed '/█/d'

log "report schedule, all_cnn_c -> $OUT/all_cnn_c.report"
started=$(date +%s)
"$PYTHON" recipes/train.py all_cnn_c --schedule report --data "$DATA" --offline \
  --out "$OUT/all_cnn_c.report" "${train_args[@]}" 2>&1 | tee -a "$OUT/gpu.log" | sed '/█/d'
log "report run took $(( $(date +%s) - started )) s"

log "done: $OUT/throughput/table.md, $OUT/all_cnn_c.report/results.json"
cat "$OUT/throughput/table.md"
