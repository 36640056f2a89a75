"""The default model's forward pass outside onnxruntime: its ONNX file's own weights in a
MiniLM (BERT) encoder written once over an array backend — torch on a GPU, numpy on CPU.

A GPU box without onnxruntime-gpu still has torch: `bench/gpu_encoder.py` measures the
encoder's GPU ceiling with the torch backend. The numpy backend is the same code on CPU, so
the dry run checks the weight mapping and the forward against onnxruntime (cosine) on any
machine; only the few lines of `TorchOps` go unexercised there.

The ONNX file stores weight-only int8 matrices (``*_q`` int8 and ``*_scale`` float32,
dequantised by a Cast and a Mul at load); they are dequantised here the same way. Which
matrix is which is read from the graph: each weight's MatMul feeds an Add with the named bias
(``inner.encoder.layer.{i}.attention.self.query.bias`` ...).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
_BIAS = re.compile(r"inner\.encoder\.layer\.(\d+)\.(.+)\.bias$")
ROLES = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


@dataclass
class MiniLMWeights:
    """Dequantised float32 weights; ``dense[i][role]`` is (matrix ``[in, out]``, bias)."""

    word: F32
    position: F32
    token_type: F32
    embedding_norm: tuple[F32, F32]
    dense: list[dict[str, tuple[F32, F32]]]
    norms: list[tuple[tuple[F32, F32], tuple[F32, F32]]]  # after attention, after the MLP
    heads: int
    epsilon: float


def load_weights(onnx_path: Path, heads: int = 12) -> MiniLMWeights:
    """The weights of the default model's ONNX file (needs the ``onnx`` package)."""
    import onnx  # noqa: PLC0415  (only this loader needs it)
    from onnx import numpy_helper  # noqa: PLC0415

    graph = onnx.load(str(onnx_path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def weight(name: str) -> F32:
        if name in init:
            return np.asarray(init[name], dtype=np.float32)
        quantised, scale = init[f"{name}_q"], init[f"{name}_scale"]
        return np.asarray(quantised.astype(np.float32) * scale, dtype=np.float32)

    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    dense: dict[int, dict[str, tuple[F32, F32]]] = {}
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        for add in consumers.get(node.output[0], []):
            bias = next((i for i in add.input if _BIAS.match(i)), None)
            if add.op_type == "Add" and bias is not None:
                match = _BIAS.match(bias)
                assert match is not None
                layer, role = int(match.group(1)), match.group(2)
                dense.setdefault(layer, {})[role] = (weight(node.input[1]), init[bias])
    layers = len(dense)
    if layers == 0 or any(set(dense[i]) != set(ROLES) for i in range(layers)):
        raise ValueError(f"{onnx_path}: not the MiniLM/BERT graph this forward expects")
    epsilon = next(
        (a.f for n in graph.node if n.op_type == "LayerNormalization" for a in n.attribute
         if a.name == "epsilon"),
        1e-12,
    )  # fmt: skip

    def norm(prefix: str) -> tuple[F32, F32]:
        return init[f"{prefix}.LayerNorm.weight"], init[f"{prefix}.LayerNorm.bias"]

    return MiniLMWeights(
        word=weight("inner.embeddings.word_embeddings.weight"),
        position=weight("inner.embeddings.position_embeddings.weight"),
        token_type=weight("inner.embeddings.token_type_embeddings.weight"),
        embedding_norm=norm("inner.embeddings"),
        dense=[dense[i] for i in range(layers)],
        norms=[
            (
                norm(f"inner.encoder.layer.{i}.attention.output"),
                norm(f"inner.encoder.layer.{i}.output"),
            )
            for i in range(layers)
        ],
        heads=heads,
        epsilon=float(epsilon),
    )


class Ops(Protocol):
    """What the forward needs from an array backend."""

    def array(self, values: NDArray[Any]) -> Any: ...
    def to_numpy(self, x: Any) -> F32: ...
    def heads_first(self, x: Any, heads: int) -> Any: ...  # [B, L, H*D] -> [B, H, L, D]
    def heads_last(self, x: Any) -> Any: ...  # [B, H, L, D] -> [B, L, H*D]
    def attention(self, q: Any, k: Any, v: Any, mask: Any) -> Any: ...
    def layer_norm(self, x: Any, gain: Any, bias: Any, epsilon: float) -> Any: ...
    def gelu(self, x: Any) -> Any: ...


class NumpyOps:
    """float32 numpy on CPU: the dry run's backend."""

    def array(self, values: NDArray[Any]) -> Any:
        return values

    def to_numpy(self, x: Any) -> F32:
        return np.asarray(x, dtype=np.float32)

    def heads_first(self, x: Any, heads: int) -> Any:
        b, length, width = x.shape
        return x.reshape(b, length, heads, width // heads).transpose(0, 2, 1, 3)

    def heads_last(self, x: Any) -> Any:
        b, heads, length, d = x.shape
        return x.transpose(0, 2, 1, 3).reshape(b, length, heads * d)

    def attention(self, q: Any, k: Any, v: Any, mask: Any) -> Any:
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1])
        scores = np.where(mask[:, None, None, :] > 0, scores, np.float32(-1e30))
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return (scores / scores.sum(axis=-1, keepdims=True)) @ v

    def layer_norm(self, x: Any, gain: Any, bias: Any, epsilon: float) -> Any:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + epsilon) * gain + bias

    def gelu(self, x: Any) -> Any:
        return np.float32(0.5) * x * (np.float32(1.0) + erf(x / np.float32(math.sqrt(2.0))))


def erf(x: F32) -> F32:
    """The error function (Abramowitz and Stegun 7.1.26, error below 1.5e-7: float32's
    own), as numpy has none."""
    sign = np.sign(x)
    a = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                + t * 1.061405429))))  # fmt: skip
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)), dtype=np.float32)


class TorchOps:
    """torch on a device (fp16 on CUDA): the GPU's backend; attention through
    `scaled_dot_product_attention` (fused kernels)."""

    def __init__(self, torch: Any, device: str, dtype: Any) -> None:
        self.torch, self.device, self.dtype = torch, device, dtype
        self.functional = torch.nn.functional

    def array(self, values: NDArray[Any]) -> Any:
        tensor = self.torch.from_numpy(np.ascontiguousarray(values)).to(self.device)
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor

    def to_numpy(self, x: Any) -> F32:
        return np.asarray(x.float().cpu().numpy(), dtype=np.float32)

    def heads_first(self, x: Any, heads: int) -> Any:
        b, length, width = x.shape
        return x.view(b, length, heads, width // heads).transpose(1, 2)

    def heads_last(self, x: Any) -> Any:
        b, heads, length, d = x.shape
        return x.transpose(1, 2).reshape(b, length, heads * d)

    def attention(self, q: Any, k: Any, v: Any, mask: Any) -> Any:
        keep = (mask > 0)[:, None, None, :]
        return self.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)

    def layer_norm(self, x: Any, gain: Any, bias: Any, epsilon: float) -> Any:
        return self.functional.layer_norm(x, (x.shape[-1],), gain, bias, epsilon)

    def gelu(self, x: Any) -> Any:
        return self.functional.gelu(x)


class MiniLM:
    """The encoder on one backend: token ids in, mean-pooled unit vectors out."""

    def __init__(self, weights: MiniLMWeights, ops: Ops) -> None:
        self.ops = ops
        a = ops.array
        self.word, self.position, self.token_type = (
            a(weights.word), a(weights.position), a(weights.token_type)
        )  # fmt: skip
        self.embedding_norm = (a(weights.embedding_norm[0]), a(weights.embedding_norm[1]))
        self.dense = [{r: (a(w), a(b)) for r, (w, b) in layer.items()} for layer in weights.dense]
        self.norms = [tuple(tuple(a(x) for x in pair) for pair in layer) for layer in weights.norms]
        self.heads, self.epsilon = weights.heads, weights.epsilon

    def hidden(self, ids: Any, mask: Any, types: Any) -> Any:
        """The last hidden state ``[B, L, width]`` of a padded batch (backend arrays)."""
        ops, eps = self.ops, self.epsilon
        length = ids.shape[1]
        x = self.word[ids] + self.position[:length][None] + self.token_type[types]
        x = ops.layer_norm(x, *self.embedding_norm, eps)
        for dense, (after_attention, after_mlp) in zip(self.dense, self.norms, strict=True):
            q, k, v = (
                ops.heads_first(x @ dense[r][0] + dense[r][1], self.heads) for r in ROLES[:3]
            )
            context = ops.heads_last(ops.attention(q, k, v, mask))
            w, b = dense["attention.output.dense"]
            gain, shift = after_attention
            x = ops.layer_norm(x + context @ w + b, gain, shift, eps)
            w, b = dense["intermediate.dense"]
            inner = ops.gelu(x @ w + b)
            w, b = dense["output.dense"]
            gain, shift = after_mlp
            x = ops.layer_norm(x + inner @ w + b, gain, shift, eps)
        return x

    def encode(
        self, ids: NDArray[np.int64], mask: NDArray[np.int64], types: NDArray[np.int64]
    ) -> F32:
        """Unit vectors of a padded batch (mean pooling over the mask), as float32 numpy."""
        a = self.ops.array
        hidden = self.ops.to_numpy(self.hidden(a(ids), a(mask), a(types)))
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)
