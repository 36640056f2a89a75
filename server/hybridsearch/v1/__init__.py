"""Generated gRPC/protobuf stubs for hybridsearch.v1 (scripts/gen_python.sh; do not edit)."""
