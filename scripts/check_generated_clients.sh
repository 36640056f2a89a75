#!/usr/bin/env bash
# Regenerate every client's committed stubs into a temp dir and fail if the tree differs.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
scripts/gen_clients.sh "$tmp" >/dev/null
status=0
for dir in clients/python/hybridsearch_client/_gen clients/go/hybridsearchv1 clients/typescript/src/gen; do
  if ! diff -r -x __pycache__ "$tmp/$dir" "$dir"; then
    echo "generated client code in $dir is stale: run scripts/gen_clients.sh and commit" >&2
    status=1
  fi
done
((status == 0)) && echo "generated client stubs are up to date"
exit $status
