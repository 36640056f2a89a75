#!/usr/bin/env bash
# Smoke load with ghz: builds the sample index (BM25-only), serves it on a free port, runs each
# bench/ghz/*.json scenario for 5 s through server reflection, and fails unless every request
# succeeded. ghz is installed once, pinned (scripts/go_tools.sh), into .cache/go/bin.
#   PYTHON=... HYBRIDSEARCH_BIN=...   as in scripts/clients_test.sh;  GHZ_DURATION=5s
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py="${PYTHON:-$root/.venv/bin/python}"
hs="${HYBRIDSEARCH_BIN:-$root/.venv/bin/hybridsearch}"
duration="${GHZ_DURATION:-5s}"

# The second half: run by the harness below with the server up and HYBRIDSEARCH_ADDR set.
if [[ "${1:-}" == "--against-server" ]]; then
  ghz=$2 reports=$3
  failed=0
  for scenario in bench/ghz/*.json; do
    name=$(basename "$scenario" .json)
    echo "== $name ($duration)"
    if ! "$ghz" --config "$scenario" --duration "$duration" --format json \
      --output "$reports/$name.json" "$HYBRIDSEARCH_ADDR"; then
      echo "ghz failed to run $name" >&2
      failed=1
      continue
    fi
    "$py" - "$reports/$name.json" <<'PY' || failed=1
import json
import sys

report = json.load(open(sys.argv[1]))
ms = 1e6  # ghz reports nanoseconds
codes = report.get("statusCodeDistribution") or {}
errors = sum(n for code, n in codes.items() if code != "OK")
latency = {int(p["percentage"]): p["latency"] / ms for p in report.get("latencyDistribution") or []}
print(
    f"  count {report['count']}  rps {report['rps']:.1f}  avg {report['average'] / ms:.2f} ms"
    f"  p50 {latency.get(50, 0):.2f} ms  p95 {latency.get(95, 0):.2f} ms"
    f"  p99 {latency.get(99, 0):.2f} ms  slowest {report['slowest'] / ms:.2f} ms"
)
print(f"  status codes {codes}")
for message, n in (report.get("errorDistribution") or {}).items():
    print(f"  error x{n}: {message}")
if errors or report["count"] == 0:
    sys.exit(f"  FAILED: {errors} errors in {report['count']} requests")
PY
  done
  exit $failed
fi

# The pinned ghz, installed on first use (one pin for this script and `make bench`).
ghz=$("$py" -c 'from bench.load import ensure_ghz; print(ensure_ghz())')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$hs" index --sample --out "$work/index" --no-dense >"$work/index.log" 2>&1 || { cat "$work/index.log" >&2; exit 1; }
# The harness serves the index on a free port, waits for SERVING, runs the scenarios, stops it.
"$py" -m hybridsearch.harness serve-then --program "$hs" --index "$work/index" --host 127.0.0.1 \
  -- "$root/scripts/ghz_smoke.sh" --against-server "$ghz" "$work"
