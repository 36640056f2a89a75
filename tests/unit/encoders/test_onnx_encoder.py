"""OnnxEncoder on the real default model (all-MiniLM-L6-v2, int8)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hybridsearch.encoders.config import Pooling, load_config
from hybridsearch.encoders.onnx_encoder import CPU_PROVIDER, OnnxEncoder, load_encoder
from hybridsearch.errors import ModelDirError

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Aspirin lowers the risk of heart attack in patients with cardiovascular disease. " * 5,
    "",
]


def test_shape_dtype_and_unit_norm(encoder: OnnxEncoder) -> None:
    vectors = encoder.encode_documents(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.dimension == 384
    assert encoder.model_id == "all-MiniLM-L6-v2-int8"
    assert encoder.provider == CPU_PROVIDER


def test_empty_input_gives_empty_matrix(encoder: OnnxEncoder) -> None:
    assert encoder.encode_queries([]).shape == (0, 384)
    assert encoder.encode_documents([]).shape == (0, 384)


def test_deterministic(encoder: OnnxEncoder) -> None:
    first = encoder.encode_documents(SENTENCES)
    second = encoder.encode_documents(SENTENCES)
    np.testing.assert_array_equal(first, second)


def test_batch_equals_single_and_order_is_restored(encoder: OnnxEncoder) -> None:
    # Sorting by length inside encode_documents must not permute the output rows.
    batched = encoder.encode_documents(SENTENCES, batch_size=4)
    singles = np.vstack([encoder.encode_documents([s]) for s in SENTENCES])
    np.testing.assert_allclose(batched, singles, atol=1e-5)
    whole = encoder.encode_documents(SENTENCES, batch_size=len(SENTENCES))
    np.testing.assert_allclose(batched, whole, atol=1e-5)


def test_padding_does_not_change_a_short_text(encoder: OnnxEncoder) -> None:
    short = "A monkey is playing drums."
    alone = encoder.encode_queries([short])[0]
    beside_long = encoder.encode_queries([short, SENTENCES[8]])[0]
    np.testing.assert_allclose(alone, beside_long, atol=1e-5)


def test_semantics_similar_sentences_closer(encoder: OnnxEncoder) -> None:
    v = encoder.encode_documents(SENTENCES[:7])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2  # eating food / eating bread vs carrying a baby
    assert v[3] @ v[6] > v[3] @ v[4] + 0.2  # riding a horse / white horse vs violin


def test_truncation_at_max_length(encoder: OnnxEncoder) -> None:
    long_text = "word " * 2000  # no tokenizer preset (128) or overflow may leak through
    assert encoder.count_tokens([long_text]) == 256
    assert encoder.encode_documents([long_text]).shape == (1, 384)


def test_prefixes_are_applied(default_model_dir: Path) -> None:
    config = dataclasses.replace(
        load_config(default_model_dir), query_prefix="query: ", document_prefix="passage: "
    )
    prefixed = OnnxEncoder(default_model_dir, config, device="cpu")
    plain = load_encoder(default_model_dir, device="cpu")
    text = "What lowers the risk of heart attack?"
    np.testing.assert_allclose(
        prefixed.encode_queries([text]), plain.encode_queries(["query: " + text]), atol=1e-6
    )
    np.testing.assert_allclose(
        prefixed.encode_documents([text]), plain.encode_documents(["passage: " + text]), atol=1e-6
    )
    assert not np.allclose(prefixed.encode_queries([text]), plain.encode_queries([text]))


def test_cls_pooling_and_no_normalize(default_model_dir: Path) -> None:
    base = load_config(default_model_dir)
    cls_raw = OnnxEncoder(
        default_model_dir,
        dataclasses.replace(base, pooling=Pooling.CLS, normalize=False),
        device="cpu",
    )
    mean = load_encoder(default_model_dir, device="cpu")
    v = cls_raw.encode_documents(SENTENCES[:3])
    assert not np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert not np.allclose(unit, mean.encode_documents(SENTENCES[:3]), atol=1e-3)


def test_progress_bar_does_not_change_results(encoder: OnnxEncoder) -> None:
    np.testing.assert_array_equal(
        encoder.encode_documents(SENTENCES, progress=True), encoder.encode_documents(SENTENCES)
    )


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="this machine offers CUDA"
)
def test_cuda_requested_without_cuda_raises(default_model_dir: Path) -> None:
    with pytest.raises(ModelDirError, match="cuda"):
        load_encoder(default_model_dir, device="cuda")


def test_auto_device_on_cpu_machine_reports_provider(default_model_dir: Path) -> None:
    enc = load_encoder(default_model_dir, device="auto", intra_op_threads=1)
    cuda = "CUDAExecutionProvider"
    expected = cuda if cuda in ort.get_available_providers() else CPU_PROVIDER
    assert enc.provider == expected


def test_unknown_device_and_bad_output_name(default_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="device must be one of"):
        load_encoder(default_model_dir, device="tpu")
    config = dataclasses.replace(load_config(default_model_dir), output_name="pooler_output")
    with pytest.raises(ModelDirError, match="no output 'pooler_output'"):
        OnnxEncoder(default_model_dir, config, device="cpu")
    wrong_dim = dataclasses.replace(load_config(default_model_dir), dimension=768)
    with pytest.raises(ModelDirError, match="output width 384"):
        OnnxEncoder(default_model_dir, wrong_dim, device="cpu")


def test_document_token_lengths_count_what_the_model_sees(encoder: OnnxEncoder) -> None:
    lengths = encoder.document_token_lengths(SENTENCES)
    assert lengths.dtype == np.int64 and lengths.shape == (len(SENTENCES),)
    assert lengths[-1] == 2  # "": [CLS] [SEP]
    assert lengths[0] == 8  # "A man is eating food." : 6 word pieces + 2 special tokens
    assert lengths.sum() == encoder.count_tokens(SENTENCES)
    assert encoder.document_token_lengths([SENTENCES[8] * 40])[0] == encoder.config.max_length


def test_tokenised_queries_encode_to_the_same_bits(encoder: OnnxEncoder) -> None:
    # More queries than one batch (32), of many lengths: the same batches, padding and vectors
    # as encoding the texts, without tokenising them again.
    texts = [" ".join(SENTENCES[: 1 + i % len(SENTENCES)])[: 7 * i + 1] for i in range(40)]
    tokens = [encoder.tokenize_query(t) for t in texts]
    # The default model has no prefixes: a query's tokens are those of the same document.
    assert encoder.config.query_prefix == encoder.config.document_prefix == ""
    assert [len(t) for t in tokens] == encoder.document_token_lengths(texts).tolist()
    assert tokens[0].text == encoder.config.query_prefix + texts[0]
    np.testing.assert_array_equal(
        encoder.encode_query_tokens(tokens), encoder.encode_queries(texts)
    )
    assert encoder.encode_query_tokens([]).shape == (0, 384)


def test_tokenised_queries_keep_the_query_prefix_and_truncation(default_model_dir: Path) -> None:
    config = dataclasses.replace(load_config(default_model_dir), query_prefix="query: ")
    prefixed = OnnxEncoder(default_model_dir, config, device="cpu", batch_size=3)
    texts = ["short", SENTENCES[8] * 8, "two words", "a b c d e f"]
    tokens = [prefixed.tokenize_query(t) for t in texts]
    assert max(len(t) for t in tokens) == config.max_length
    np.testing.assert_array_equal(
        prefixed.encode_query_tokens(tokens), prefixed.encode_queries(texts)
    )
