"""hybridsearch: a gRPC hybrid dense-sparse search server (tantivy BM25 + ONNX dense encoder)."""

__version__ = "0.1.0"
