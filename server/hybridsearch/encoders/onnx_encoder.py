"""`OnnxEncoder`: an `Encoder` over an onnxruntime session and a Hugging Face tokenizer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from tokenizers import Tokenizer
from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]  # types-tqdm: dev extra

from hybridsearch.encoders.base import QueryTokens
from hybridsearch.encoders.config import EncoderConfig, Pooling, load_config
from hybridsearch.errors import ModelDirError
from hybridsearch.types import Device

log = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"

# The inputs a BERT-style encoder may declare; the session is fed only those it declares.
_KNOWN_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids"})


def parse_device(device: Device | str) -> Device:
    """A `Device` from its name (``auto``, ``cpu``, ``cuda``); ValueError names the choices."""
    if isinstance(device, Device):
        return device
    try:
        return Device(device.lower())
    except ValueError:
        choices = ", ".join(d.value for d in Device)
        raise ValueError(f"device must be one of {choices}, got {device!r}") from None


def _providers_for(device: Device) -> list[str]:
    available = ort.get_available_providers()
    if device is Device.CPU:
        return [CPU_PROVIDER]
    if CUDA_PROVIDER in available:
        return [CUDA_PROVIDER, CPU_PROVIDER]
    if device is Device.CUDA:
        raise ModelDirError(
            "device 'cuda' requested but onnxruntime offers no CUDAExecutionProvider "
            f"(available: {', '.join(available)}); install hybridsearch[gpu] "
            "(onnxruntime-gpu) instead of onnxruntime, or use --device cpu"
        )
    return [CPU_PROVIDER]


class OnnxEncoder:
    """Encodes texts with an ONNX transformer: tokenise, run, pool, optionally L2-normalise.

    Inference releases the GIL (onnxruntime), so one encoder may serve several threads.
    """

    def __init__(
        self,
        model_dir: Path,
        config: EncoderConfig,
        *,
        device: Device | str = Device.AUTO,
        intra_op_threads: int | None = None,
        batch_size: int = 32,
        fp16: bool = False,
        spinning: bool = True,
        query_model: Path | None = None,
    ) -> None:
        """``query_model``: another ONNX file of the same model that encodes the queries (the
        int8 variant from `quantize_model`); documents always use the model directory's."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._config = config
        self._batch_size = batch_size
        model_dir = Path(model_dir)
        device = parse_device(device)
        onnx_path = model_dir / config.onnx_file
        if fp16:
            onnx_path = _fp16_model_path(onnx_path, device)
        self._tokenizer = load_tokenizer(model_dir / config.tokenizer_file, config.max_length)
        padding = self._tokenizer.padding or {}
        self._pad_ids = (int(padding.get("pad_id", 0)), int(padding.get("pad_type_id", 0)))
        self._session = _create_session(onnx_path, device, intra_op_threads, spinning=spinning)
        self._provider: str = self._session.get_providers()[0]
        self._io_binding = uses_io_binding(self._provider)
        self._query_session = self._session
        if query_model is not None:
            if self._provider != CPU_PROVIDER:
                raise ModelDirError(
                    f"{query_model.name}: the int8 query model runs on CPU only, but the "
                    f"encoder serves on {self._provider}; use --device cpu or drop --encoder-int8"
                )
            self._query_session = _create_session(
                query_model, device, intra_op_threads, spinning=spinning
            )
        declared = [i.name for i in self._session.get_inputs()]
        unknown = sorted(set(declared) - _KNOWN_INPUTS)
        if unknown or "input_ids" not in declared:
            raise ModelDirError(
                f"{model_dir / config.onnx_file}: expected inputs among "
                f"{sorted(_KNOWN_INPUTS)} including input_ids, the model declares {declared}"
            )
        self._input_names = declared
        outputs = {o.name: o for o in self._session.get_outputs()}
        if config.output_name not in outputs:
            raise ModelDirError(
                f"{model_dir / config.onnx_file}: no output {config.output_name!r} "
                f"(outputs: {', '.join(outputs)}); fix output_name in encoder.json"
            )
        last_dim = outputs[config.output_name].shape[-1]
        if isinstance(last_dim, int) and last_dim != config.dimension:
            raise ModelDirError(
                f"{model_dir / config.onnx_file}: output width {last_dim} differs from "
                f"dimension {config.dimension} in encoder.json"
            )

    @property
    def config(self) -> EncoderConfig:
        """The model directory's configuration."""
        return self._config

    @property
    def model_id(self) -> str:
        """The model id recorded in ``encoder.json``."""
        return self._config.model_id

    @property
    def dimension(self) -> int:
        """Output dimension."""
        return self._config.dimension

    @property
    def provider(self) -> str:
        """The execution provider that actually serves (first of the session's providers)."""
        return self._provider

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Encode queries (query prefix applied) into an ``(n, dimension)`` float32 array."""
        prefixed = [self._config.query_prefix + t for t in texts]
        return self._encode_sorted(prefixed, self._batch_size, self._query_session, progress=False)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> NDArray[np.float32]:
        """Encode documents (document prefix applied) into an ``(n, dimension)`` float32 array.

        Texts are batched in order of length to limit padding; rows come back in input order.
        ``progress`` shows a tqdm bar on stderr.
        """
        size = self._batch_size if batch_size is None else batch_size
        if size <= 0:
            raise ValueError(f"batch_size must be positive, got {size}")
        prefixed = [self._config.document_prefix + t for t in texts]
        return self._encode_sorted(prefixed, size, self._session, progress=progress)

    def count_query_tokens(self, text: str) -> int:
        """Tokens the model sees for this query (prefix, special tokens, truncation)."""
        return len(self.tokenize_query(text))

    def tokenize_query(self, text: str) -> QueryTokens:
        """The query as the model sees it (prefix, special tokens, truncation), tokenised
        once: a micro-batch groups queries by their length (a batch runs padded to its
        longest), then `encode_query_tokens` runs it without tokenising again."""
        prefixed = self._config.query_prefix + text
        encoding = self._tokenizer.encode(prefixed)
        return QueryTokens(prefixed, encoding.ids, encoding.type_ids)

    def encode_query_tokens(self, queries: Sequence[QueryTokens]) -> NDArray[np.float32]:
        """`encode_queries` for queries `tokenize_query` has tokenised: the same batches,
        padding and vectors (to the bit), without a second pass of the tokenizer."""
        out = np.empty((len(queries), self.dimension), dtype=np.float32)
        if not queries:
            return out
        order = np.argsort(np.fromiter((len(q.text) for q in queries), np.int64, len(queries)))
        for start in range(0, len(queries), self._batch_size):
            rows = order[start : start + self._batch_size]
            feeds = self._padded([queries[i] for i in rows])
            out[rows] = self._pooled(feeds, self._query_session)
        return out

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the model sees for these documents (prefix, special tokens, truncation)."""
        return int(self.document_token_lengths(texts).sum())

    def document_token_lengths(self, texts: Sequence[str]) -> NDArray[np.int64]:
        """Tokens the model sees for each document (prefix, special tokens, truncation): what
        a bulk build sorts documents by, so that a batch pads little."""
        encodings = self._tokenizer.encode_batch([self._config.document_prefix + t for t in texts])
        return np.fromiter((sum(e.attention_mask) for e in encodings), np.int64, len(texts))

    def _encode_sorted(
        self,
        texts: list[str],
        batch_size: int,
        session: ort.InferenceSession,
        *,
        progress: bool,
    ) -> NDArray[np.float32]:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # Character length is a cheap proxy for token length (as sentence-transformers does).
        order = np.argsort(np.fromiter((len(t) for t in texts), np.int64, len(texts)))
        bar = _progress_bar(len(texts)) if progress else None
        try:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                out[rows] = self._encode_batch([texts[i] for i in rows], session)
                if bar is not None:
                    bar.update(len(rows))
        finally:
            if bar is not None:
                bar.close()
        return out

    def _encode_batch(self, texts: list[str], session: ort.InferenceSession) -> NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return self._pooled(feeds, session)

    def _padded(self, queries: Sequence[QueryTokens]) -> dict[str, NDArray[np.int64]]:
        """A batch's feeds from tokenised queries, padded to the longest as the tokenizer's
        ``encode_batch`` pads (its pad id and pad type id, the mask 0 over the padding)."""
        width = max(len(q) for q in queries)
        pad_id, pad_type_id = self._pad_ids
        ids = np.full((len(queries), width), pad_id, dtype=np.int64)
        types = np.full((len(queries), width), pad_type_id, dtype=np.int64)
        mask = np.zeros((len(queries), width), dtype=np.int64)
        for row, query in enumerate(queries):
            n = len(query)
            ids[row, :n] = query.ids
            types[row, :n] = query.type_ids
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def _pooled(
        self, feeds: dict[str, NDArray[np.int64]], session: ort.InferenceSession
    ) -> NDArray[np.float32]:
        """One batch's vectors: the model over ``feeds`` (those it declares), then pooling
        and normalisation as ``encoder.json`` says."""
        mask = feeds["attention_mask"]
        feeds = {name: feeds[name] for name in self._input_names}
        hidden = np.asarray(self._run(session, feeds), dtype=np.float32)  # fp16: cast back
        if self._config.pooling is Pooling.CLS:
            pooled = hidden[:, 0, :]
        else:
            weights = mask.astype(np.float32)[:, :, None]
            counts = np.maximum(weights.sum(axis=1), 1.0)
            pooled = (hidden * weights).sum(axis=1) / counts
        if self._config.normalize:
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled = pooled / np.maximum(norms, 1e-12)
        return pooled.astype(np.float32, copy=False)

    def _run(
        self, session: ort.InferenceSession, feeds: dict[str, NDArray[np.int64]]
    ) -> NDArray[np.generic]:
        """The hidden states of one batch; on CUDA through I/O binding."""
        if not self._io_binding:
            (hidden,) = session.run([self._config.output_name], feeds)
            return np.asarray(hidden)
        # Inputs are copied to the device once, the output is allocated there by onnxruntime
        # (no per-run host staging buffer), then copied back for pooling.
        binding = session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        binding.bind_output(self._config.output_name, "cuda")
        session.run_with_iobinding(binding)
        (hidden,) = binding.copy_outputs_to_cpu()
        return np.asarray(hidden)


def uses_io_binding(provider: str) -> bool:
    """Whether a session served by ``provider`` runs through I/O binding (CUDA only)."""
    return provider == CUDA_PROVIDER


def fp16_model_path(onnx_path: Path) -> Path:
    """Where the fp16 variant of a model lives: ``model.onnx`` → ``model_fp16.onnx``."""
    return onnx_path.with_name(f"{onnx_path.stem}_fp16{onnx_path.suffix}")


def _fp16_model_path(onnx_path: Path, device: Device) -> Path:
    if device is not Device.CUDA:
        raise ModelDirError(
            "the fp16 model runs only with --device cuda (fp16 on CPU is slower than int8/fp32)"
        )
    path = fp16_model_path(onnx_path)
    if not path.is_file():
        raise ModelDirError(
            f"{path}: no fp16 model; convert {onnx_path.name} with onnxconverter-common "
            "(float16.convert_float_to_float16, keep_io_types=True) and save it there"
        )
    return path


def load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    """A tokenizer truncating at ``max_length`` and padding to the longest text of a batch."""
    if not path.is_file():
        raise ModelDirError(f"{path}: tokenizer file not found")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad files
        raise ModelDirError(f"{path}: cannot load tokenizer: {exc}") from None
    # Shipped tokenizer.json files often preset fixed padding/truncation (e.g. 128): reset both,
    # truncating at the configured length and padding only to the longest text of a batch.
    preset = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(
        pad_id=int(preset.get("pad_id", 0)),
        pad_type_id=int(preset.get("pad_type_id", 0)),
        pad_token=str(preset.get("pad_token", "[PAD]")),
    )
    return tokenizer


def _create_session(
    path: Path, device: Device, intra_op_threads: int | None, *, spinning: bool = True
) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelDirError(f"{path}: ONNX file not found")
    providers = _providers_for(device)
    options = ort.SessionOptions()
    if intra_op_threads is not None:
        if intra_op_threads < 0:
            raise ValueError(f"intra_op_threads must be >= 0, got {intra_op_threads}")
        options.intra_op_num_threads = intra_op_threads
    if not spinning:
        # Idle pool threads sleep instead of spinning: on a shared or oversubscribed host a
        # spinning pool doubled the CPU per query (16.8 vs 8.9 ms, bench/results).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime's pybind exceptions share no useful base
        raise ModelDirError(f"{path}: onnxruntime cannot load the model: {exc}") from None
    serving = session.get_providers()[0]
    # onnxruntime-gpu falls back to CPU silently when CUDA is unusable (driver, libraries).
    if device is Device.CUDA and serving != CUDA_PROVIDER:
        raise ModelDirError(
            f"device 'cuda' requested but onnxruntime serves with {serving} "
            "(CUDA libraries or driver unusable; see onnxruntime's log)"
        )
    if device is Device.AUTO and CUDA_PROVIDER in providers and serving != CUDA_PROVIDER:
        log.warning("CUDA is offered but unusable; encoding on %s", serving)
    return session


def _progress_bar(total: int) -> _Bar:
    # disable=None: drawn on a terminal only (tqdm's rule), never into a log file
    bar: _Bar = tqdm(total=total, unit="doc", desc="encoding", leave=False, disable=None)
    return bar


class _Bar(Protocol):  # the part of tqdm used here
    def update(self, n: int) -> object: ...
    def close(self) -> None: ...


def load_encoder(
    model_dir: Path | str,
    device: Device | str = Device.AUTO,
    intra_op_threads: int | None = None,
    batch_size: int = 32,
    query_model: Path | None = None,
) -> OnnxEncoder:
    """Open a model directory (``encoder.json``, ONNX file, tokenizer) as an `OnnxEncoder`.

    Raises `ModelDirError` for a missing or damaged directory and for ``device="cuda"`` that
    cannot run on CUDA.
    """
    model_dir = Path(model_dir)
    config = load_config(model_dir)
    return OnnxEncoder(
        model_dir,
        config,
        device=device,
        intra_op_threads=intra_op_threads,
        batch_size=batch_size,
        query_model=query_model,
    )
