#!/usr/bin/env bash
# Builds the bundled sample index once (BM25-only), serves it on a free port, and runs every
# client's live tests against it (HYBRIDSEARCH_ADDR). Fails if any client fails.
#   CLIENTS="python go"       run a subset (default: python go typescript java)
#   PYTHON=...                interpreter with hybridsearch and pytest installed (default .venv)
#   HYBRIDSEARCH_BIN=...      server CLI (default .venv/bin/hybridsearch)
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

started=$SECONDS
echo "== building the sample index (BM25-only)"
if ! "$hs" index --sample --out "$work/index" --no-dense >"$work/index.log" 2>&1; then
  cat "$work/index.log" >&2
  exit 1
fi

# The harness starts the server on a free port, waits for health SERVING (a Watch stream, no
# sleeps), runs the clients with HYBRIDSEARCH_ADDR set, stops the server with SIGTERM, and fails
# (printing the server's stderr) when the server does not exit cleanly.
rc=0
"$py" -m hybridsearch.harness serve-then --program "$hs" --index "$work/index" --host 127.0.0.1 \
  -- "$root/scripts/clients_test.sh" --against-server || rc=$?
echo "== total $((SECONDS - started)) s"
exit "$rc"
