#!/usr/bin/env bash
# Regenerate the committed Python stubs into a temp dir and fail if they differ from the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
scripts/gen_python.sh "$tmp"
if ! diff -r -x __pycache__ "$tmp/hybridsearch/v1" server/hybridsearch/v1; then
  echo "generated Python stubs are stale: run 'make gen' and commit" >&2
  exit 1
fi
echo "generated Python stubs are up to date"
