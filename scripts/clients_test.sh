#!/usr/bin/env bash
# Serves a data directory on a free port and runs every client's live tests against it
# (HYBRIDSEARCH_ADDR). Fails if any client fails. Its collections:
#   default   the bundled sample index (Cranfield, BM25-only): the search/index tests
#   scifact   SciFact with synthetic metadata (scripts/synthetic_metadata.py), hybrid: the
#             filter/pagination/highlight tests (HYBRIDSEARCH_FILTER_COLLECTION=scifact); when
#             the shared data is absent it is left out and those tests skip, saying why.
#   CLIENTS="python go"       run a subset (default: python go typescript java)
#   PYTHON=...                interpreter with hybridsearch and pytest installed (default .venv)
#   HYBRIDSEARCH_BIN=...      server CLI (default .venv/bin/hybridsearch)
#   HYBRIDSEARCH_MODEL_DIR    query/document model (default var/models/all-MiniLM-L6-v2)
#   HYBRIDSEARCH_SHARED_DATA  the shared BEIR collections (default ../shared/data)
#   HYBRIDSEARCH_RUN_CACHE    an eval index cache to reuse (make test shares pytest's, so
#                             SciFact is encoded once a run); default: a temp directory
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py="${PYTHON:-$root/.venv/bin/python}"
hs="${HYBRIDSEARCH_BIN:-$root/.venv/bin/hybridsearch}"
read -r -a clients <<<"${CLIENTS:-python go typescript java}"

run_python() { PYTHONPATH="$root/clients/python" "$py" -m pytest -q -p no:cacheprovider clients/python/tests; }
run_go() { (cd clients/go && go test -count=1 ./...); }
run_typescript() {
  (
    cd clients/typescript
    # npm ci only when the lock file changed since the last install.
    if [[ ! node_modules/.package-lock.json -nt package-lock.json ]]; then
      npm ci --silent --no-audit --no-fund
    fi
    npm test --silent
  )
}
run_java() { (cd clients/java && mvn -B -q -Dstyle.color=never test); }

# The second half: run by the harness below with the server up and HYBRIDSEARCH_ADDR set.
if [[ "${1:-}" == "--against-server" ]]; then
  failed=()
  for client in "${clients[@]}"; do
    echo "== $client client"
    t0=$SECONDS
    if "run_$client"; then
      echo "== $client: ok ($((SECONDS - t0)) s)"
    else
      echo "== $client: FAILED ($((SECONDS - t0)) s)" >&2
      failed+=("$client")
    fi
  done
  if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
  fi
  echo "all clients passed: ${clients[*]}"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

model="${HYBRIDSEARCH_MODEL_DIR:-$root/var/models/all-MiniLM-L6-v2}"
shared="${HYBRIDSEARCH_SHARED_DATA:-$root/../shared/data}"
cache="${HYBRIDSEARCH_RUN_CACHE:-$work/cache}"
logged() {  # run a set-up step; show its output only when it fails
  if ! "$@" >"$work/step.log" 2>&1; then
    cat "$work/step.log" >&2
    exit 1
  fi
}

started=$SECONDS
echo "== building the sample index (BM25-only) as the default collection"
logged "$hs" index --sample --out "$work/sample" --no-dense --no-progress
logged "$hs" collections import default --from-index "$work/sample" --data-dir "$work/data"
if [[ -f "$shared/scifact/corpus.jsonl" ]]; then
  echo "== SciFact with synthetic metadata as the collection 'scifact' (encoded unless cached)"
  if ! scifact=$("$py" scripts/synthetic_metadata.py --corpus "$shared/scifact/corpus.jsonl" \
    --index-cache "$cache" --model "$model" --no-progress 2>"$work/step.log" | tail -n 1); then
    cat "$work/step.log" >&2
    exit 1
  fi
  logged "$hs" collections import scifact --from-index "$scifact" --data-dir "$work/data"
  export HYBRIDSEARCH_FILTER_COLLECTION=scifact
else
  echo "== $shared/scifact absent: the filter tests will skip (set HYBRIDSEARCH_SHARED_DATA)"
fi

# The harness starts the server on a free port, waits for health SERVING (a Watch stream, no
# sleeps), runs the clients with HYBRIDSEARCH_ADDR set, stops the server with SIGTERM, and fails
# (printing the server's stderr) when the server does not exit cleanly.
rc=0
"$py" -m hybridsearch.harness serve-then --program "$hs" --data-dir "$work/data" --model "$model" \
  --host 127.0.0.1 \
  -- "$root/scripts/clients_test.sh" --against-server || rc=$?
echo "== total $((SECONDS - started)) s"
exit "$rc"
