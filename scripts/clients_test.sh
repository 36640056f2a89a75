#!/usr/bin/env bash
# Builds the bundled sample index once (BM25-only), serves it on a free port, and runs every
# client's live tests against it (HYBRIDSEARCH_ADDR). Fails if any client fails.
#   CLIENTS="python go"       run a subset (default: python go typescript java)
#   PYTHON=...                interpreter with grpcio, grpcio-health-checking, pytest (default .venv)
#   HYBRIDSEARCH_BIN=...      server CLI (default .venv/bin/hybridsearch)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py="${PYTHON:-$root/.venv/bin/python}"
hs="${HYBRIDSEARCH_BIN:-$root/.venv/bin/hybridsearch}"
read -r -a clients <<<"${CLIENTS:-python go typescript java}"

work=$(mktemp -d)
server_pid=""
stop_server() {
  [[ -n "$server_pid" ]] || return 0
  local pid=$server_pid rc=0
  server_pid=""
  kill -TERM "$pid" 2>/dev/null || return 0
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    echo "server exited with status $rc after SIGTERM; its stderr:" >&2
    tail -n 30 "$work/serve.err" >&2
    return 1
  fi
}
cleanup() { stop_server || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
echo "== building the sample index (BM25-only)"
if ! "$hs" index --sample --out "$work/index" --no-dense >"$work/index.log" 2>&1; then
  cat "$work/index.log" >&2
  exit 1
fi

echo "== starting the server"
# The server's first stdout line is `listening on HOST:PORT`; read it through a pipe (no polling).
exec 3< <(exec "$hs" serve --index "$work/index" --host 127.0.0.1 --port 0 2>"$work/serve.err")
server_pid=$!
if ! read -r -t 120 -u 3 first_line || [[ "$first_line" != "listening on "* ]]; then
  echo "server did not announce its address (got: '${first_line:-}'); stderr:" >&2
  cat "$work/serve.err" >&2
  exit 1
fi
addr=${first_line#listening on }
cat <&3 >"$work/serve.out" &  # keep draining stdout so the server never blocks on a full pipe

# Block on grpc.health.v1 Watch until SERVING (wait_for_ready: no sleeps, bounded by a deadline).
"$py" - "$addr" <<'PY'
import sys
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service="")
    for update in stub.Watch(request, timeout=60, wait_for_ready=True):
        if update.status == health_pb2.HealthCheckResponse.SERVING:
            break
    else:
        sys.exit("health watch ended before SERVING")
PY
echo "== server SERVING on $addr (setup $((SECONDS - started)) s)"
export HYBRIDSEARCH_ADDR=$addr

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

stop_server || failed+=("server-shutdown")
echo "== total $((SECONDS - started)) s"
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "all clients passed: ${clients[*]}"
