#!/usr/bin/env bash
# Installs pinned Go tools into .cache/go/bin (once per pin) and prints their paths, one a line.
#   scripts/go_tools.sh ghz grpcurl
# `go install` builds report "dev" as their version, so a stamp file beside each records the pin.
set -euo pipefail
cd "$(dirname "$0")/.."
gobin="$(pwd)/.cache/go/bin"
declare -A modules=(
  [ghz]="github.com/bojand/ghz/cmd/ghz@v0.121.0"
  [grpcurl]="github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"
)
for name in "$@"; do
  module=${modules[$name]:-}
  if [[ -z "$module" ]]; then
    echo "unknown tool '$name' (known: ${!modules[*]})" >&2
    exit 2
  fi
  version=${module##*@}
  if [[ ! -x "$gobin/$name" ]] || [[ "$(cat "$gobin/$name.version" 2>/dev/null)" != "$version" ]]; then
    echo "== installing $name $version" >&2
    GOBIN="$gobin" GOFLAGS=-mod=mod go install "$module" >&2
    echo "$version" >"$gobin/$name.version"
  fi
  echo "$gobin/$name"
done
