#!/usr/bin/env bash
# Smoke load with ghz: builds the sample index (BM25-only), serves it on a free port, runs each
# bench/ghz/*.json scenario for 5 s through server reflection, and fails unless every request
# succeeded. ghz is installed once, pinned, into .cache/go/bin.
#   PYTHON=... HYBRIDSEARCH_BIN=...   as in scripts/clients_test.sh;  GHZ_DURATION=5s
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py="${PYTHON:-$root/.venv/bin/python}"
hs="${HYBRIDSEARCH_BIN:-$root/.venv/bin/hybridsearch}"
duration="${GHZ_DURATION:-5s}"
GHZ_VERSION=v0.121.0
gobin="$root/.cache/go/bin"
ghz="$gobin/ghz"
# `ghz --version` says "dev" for a `go install` build, so a stamp file records the pin.
if [[ ! -x "$ghz" ]] || [[ "$(cat "$gobin/ghz.version" 2>/dev/null)" != "$GHZ_VERSION" ]]; then
  echo "== installing ghz $GHZ_VERSION"
  GOBIN="$gobin" GOFLAGS=-mod=mod go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
  echo "$GHZ_VERSION" >"$gobin/ghz.version"
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$hs" index --sample --out "$work/index" --no-dense >"$work/index.log" 2>&1 || { cat "$work/index.log" >&2; exit 1; }
exec 3< <(exec "$hs" serve --index "$work/index" --host 127.0.0.1 --port 0 2>"$work/serve.err")
server_pid=$!
if ! read -r -t 120 -u 3 first_line || [[ "$first_line" != "listening on "* ]]; then
  echo "server did not announce its address; stderr:" >&2
  cat "$work/serve.err" >&2
  exit 1
fi
addr=${first_line#listening on }
cat <&3 >/dev/null &
"$py" - "$addr" <<'PY'
import sys
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = health_pb2_grpc.HealthStub(channel)
    for update in stub.Watch(health_pb2.HealthCheckRequest(), timeout=60, wait_for_ready=True):
        if update.status == health_pb2.HealthCheckResponse.SERVING:
            break
PY
echo "== server SERVING on $addr"

failed=0
for scenario in bench/ghz/*.json; do
  name=$(basename "$scenario" .json)
  echo "== $name ($duration)"
  if ! "$ghz" --config "$scenario" --duration "$duration" --format json --output "$work/$name.json" "$addr"; then
    echo "ghz failed to run $name" >&2
    failed=1
    continue
  fi
  "$py" - "$work/$name.json" <<'PY' || failed=1
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
