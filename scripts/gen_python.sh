#!/usr/bin/env bash
# Regenerates the Python stubs of proto/hybridsearch/v1 into server/hybridsearch/v1 (committed).
# Pinned generators: grpcio-tools and mypy-protobuf from the `dev` extra.
# Usage: scripts/gen_python.sh [OUT_ROOT]   (default: server)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-server}"
py="${PYTHON:-.venv/bin/python}"
export PATH="$(cd "$(dirname "$py")" && pwd):$PATH"
mkdir -p "$out/hybridsearch/v1"
rm -f "$out"/hybridsearch/v1/*_pb2*.py "$out"/hybridsearch/v1/*_pb2*.pyi
"$py" -m grpc_tools.protoc -I proto \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  proto/hybridsearch/v1/*.proto
printf '"""Generated gRPC/protobuf stubs for hybridsearch.v1 (scripts/gen_python.sh; do not edit)."""\n' \
  > "$out/hybridsearch/v1/__init__.py"
