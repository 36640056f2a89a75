"""Query and document encoders (ONNX Runtime + tokenizers)."""
