#!/usr/bin/env bash
# Fails when proto/ breaks wire or generated-code compatibility (buf FILE rules, buf.yaml) with
# the last release, whose image is committed as proto/breaking/v1.binpb.
#
# At a release, refresh the baseline from the released tree and commit it:
#   .cache/npm/node_modules/.bin/buf build -o proto/breaking/v1.binpb
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=1.75.0  # same pin as the Makefile's proto-lint
buf=.cache/npm/node_modules/.bin/buf
if [[ ! -x "$buf" ]] || [[ "$("$buf" --version)" != "$BUF_VERSION" ]]; then
  mkdir -p .cache/npm
  npm install --silent --prefix .cache/npm --no-audit --no-fund "@bufbuild/buf@$BUF_VERSION"
fi
"$buf" breaking proto --against proto/breaking/v1.binpb
echo "proto/ is wire-compatible with proto/breaking/v1.binpb"
