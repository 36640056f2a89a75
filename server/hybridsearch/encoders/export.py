"""Export a local Hugging Face BERT-style checkpoint to a model directory (optional extra).

Needs ``pip install -e .[export]`` (torch, transformers, onnx); they are imported only inside
`export_model`, so the server never loads them. The exported model is checked against the
PyTorch model before it is published: cosine ≥ `PARITY_MIN_COSINE` on every sample sentence.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridsearch.encoders.config import (
    EncoderConfig,
    Pooling,
    save_config,
    sha256_file,
)
from hybridsearch.encoders.onnx_encoder import OnnxEncoder, load_tokenizer
from hybridsearch.errors import ModelDirError

PARITY_MIN_COSINE = 0.999
ONNX_OPSET = 17

# Mixed lengths on purpose: the ONNX side runs them padded in batches, the PyTorch side one by
# one, so padding and dynamic axes are exercised too.
PARITY_SENTENCES = [
    "A man is playing a guitar.",
    "Aspirin reduces the risk of myocardial infarction in patients with coronary disease.",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Neural networks learn representations of text by predicting masked tokens from context, "
    "and sentence encoders are fine-tuned with contrastive objectives on paired data.",
    "Hi",
    "Vitamin D supplementation does not prevent fractures in community-dwelling older adults.",
    "Stock markets fell sharply after the central bank raised interest rates again this week.",
]

_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_EXPORT_MODULES = {"torch": "torch", "transformers": "transformers", "onnx": "onnx"}


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What `export_model` wrote and how close it is to the PyTorch model."""

    model_dir: Path
    config: EncoderConfig
    min_cosine: float


def export_model(
    hf_dir: Path | str,
    out_dir: Path | str,
    *,
    pooling: Pooling = Pooling.MEAN,
    normalize: bool = True,
    max_length: int = 256,
    query_prefix: str = "",
    document_prefix: str = "",
    model_id: str | None = None,
) -> ExportReport:
    """Export ``hf_dir`` (config.json, model.safetensors, tokenizer.json) to ``out_dir``.

    Writes ``model.onnx`` (dynamic batch and sequence axes, output ``last_hidden_state``),
    ``tokenizer.json`` and ``encoder.json`` (sha256 of both files recorded), then compares the
    ONNX encoder with the PyTorch model on `PARITY_SENTENCES`. The directory is built beside
    ``out_dir`` and renamed into place only when parity holds; ``out_dir`` must not exist.
    """
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    missing = [name for name in _REQUIRED_FILES if not (hf_dir / name).is_file()]
    if missing:
        raise ModelDirError(f"{hf_dir}: not a Hugging Face checkpoint, missing {missing}")
    if out_dir.exists():
        raise ModelDirError(f"{out_dir}: already exists; choose a new --out")
    torch, transformers = _import_export_modules()
    try:
        model = transformers.AutoModel.from_pretrained(str(hf_dir), local_files_only=True)
    except Exception as exc:  # transformers raises many unrelated types
        raise ModelDirError(f"{hf_dir}: transformers cannot load the checkpoint: {exc}") from None
    model.eval()
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and max_length > limit:
        raise ModelDirError(f"max_length {max_length} exceeds the model's {limit} positions")
    config = EncoderConfig(
        model_id=model_id or hf_dir.resolve().name,
        dimension=int(model.config.hidden_size),
        pooling=pooling,
        normalize=normalize,
        max_length=max_length,
        query_prefix=query_prefix,
        document_prefix=document_prefix,
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        shutil.copyfile(hf_dir / "tokenizer.json", staging / config.tokenizer_file)
        _export_onnx(torch, model, staging / config.onnx_file, staging, config)
        digests = {
            name: sha256_file(staging / name) for name in (config.onnx_file, config.tokenizer_file)
        }
        config = dataclasses.replace(config, sha256=digests)
        save_config(config, staging)
        min_cosine = _parity(torch, model, staging, config)
        if min_cosine < PARITY_MIN_COSINE:
            raise ModelDirError(
                f"exported model disagrees with PyTorch: min cosine {min_cosine:.6f} "
                f"< {PARITY_MIN_COSINE}; nothing written"
            )
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return ExportReport(out_dir, config, min_cosine)


def _import_export_modules() -> tuple[Any, Any]:
    missing = [pip for mod, pip in _EXPORT_MODULES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise ModelDirError(
            f"export needs {', '.join(_EXPORT_MODULES)} (missing: {', '.join(missing)}): "
            "pip install -e .[export]"
        )
    return importlib.import_module("torch"), importlib.import_module("transformers")


def _input_names(model: Any) -> list[str]:
    accepted = inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in accepted:
        names.append("token_type_ids")
    return names


def _export_onnx(torch: Any, model: Any, path: Path, staging: Path, config: EncoderConfig) -> None:
    names = _input_names(model)

    class LastHiddenState(torch.nn.Module):  # type: ignore[misc]  # torch is untyped here
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    tokenizer = load_tokenizer(staging / config.tokenizer_file, config.max_length)
    sample = tokenizer.encode_batch(PARITY_SENTENCES[:2])
    fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
    args = tuple(
        torch.tensor([getattr(e, fields[name]) for e in sample], dtype=torch.int64)
        for name in names
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, config.output_name]}
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter warns (deprecation, tracer) by design; parity is the check.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                # eval(): the exporter restores the wrapper's train/eval mode on every submodule
                # afterwards, so a wrapper left in training mode would switch dropout on.
                LastHiddenState().eval(),
                args,
                str(path),
                input_names=names,
                output_names=[config.output_name],
                dynamic_axes=axes,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        except Exception as exc:  # torch.onnx raises assorted types
            raise ModelDirError(f"ONNX export failed: {exc}") from None
        finally:
            model.eval()


def _parity(torch: Any, model: Any, staging: Path, config: EncoderConfig) -> float:
    """Min cosine between the ONNX encoder (batched) and PyTorch (one text at a time)."""
    texts = [config.document_prefix + t for t in PARITY_SENTENCES]
    onnx_vectors = OnnxEncoder(staging, config, device="cpu", batch_size=3).encode_documents(
        PARITY_SENTENCES
    )
    tokenizer = load_tokenizer(staging / config.tokenizer_file, config.max_length)
    names = _input_names(model)
    fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
    torch_vectors = []
    model.eval()
    with torch.no_grad():
        for text in texts:
            encoding = tokenizer.encode(text)
            feeds = {
                name: torch.tensor([getattr(encoding, fields[name])], dtype=torch.int64)
                for name in names
            }
            hidden = model(**feeds).last_hidden_state[0]
            pooled = hidden[0] if config.pooling is Pooling.CLS else hidden.mean(dim=0)
            torch_vectors.append(pooled.numpy().astype(np.float64))
    reference = np.vstack(torch_vectors)
    exported = onnx_vectors.astype(np.float64)
    cosines = (reference * exported).sum(axis=1) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(exported, axis=1)
    )
    return float(cosines.min())
