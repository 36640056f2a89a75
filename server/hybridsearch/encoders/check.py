"""`check_model`: is a model directory complete, intact and producing sensible vectors?"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hybridsearch.encoders.config import (
    ENCODER_CONFIG_FILE,
    EncoderConfig,
    load_config,
    verify_sha256,
)
from hybridsearch.encoders.onnx_encoder import OnnxEncoder
from hybridsearch.errors import ModelDirError
from hybridsearch.types import Device

# A query, a paraphrase of it and an unrelated sentence: any working sentence encoder ranks
# the paraphrase above the unrelated sentence.
PROBE_QUERY = "A man is playing a guitar."
PROBE_SIMILAR = "Someone plays an acoustic guitar on stage."
PROBE_DISSIMILAR = "The central bank raised interest rates to curb inflation."

_UNIT_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One named check and what it found."""

    name: str
    ok: bool
    detail: str


@dataclass(slots=True)
class ModelReport:
    """The outcome of `check_model`; ``ok`` when every check passed."""

    model_dir: Path
    checks: list[CheckResult] = field(default_factory=list)
    model_id: str | None = None
    provider: str | None = None

    @property
    def ok(self) -> bool:
        """True when every check ran and passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        """Record a check; returns ``ok`` so a caller can stop at the first failure."""
        self.checks.append(CheckResult(name, ok, detail))
        return ok

    def lines(self) -> list[str]:
        """Human-readable lines, one per check, then a verdict."""
        out = [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        out.append(f"{self.model_dir}: {'OK' if self.ok else 'FAILED'}")
        return out


def check_model(model_dir: Path | str, device: Device | str = Device.AUTO) -> ModelReport:
    """Check a model directory; never raises for a bad model, the report says what failed.

    Checks, stopping at the first failure: ``encoder.json`` valid; the ONNX and tokenizer files
    present; recorded sha256 digests match; the model loads; a probe encoding has the right
    shape, finite values, unit norm when ``normalize``, and ranks a paraphrase above an
    unrelated sentence.
    """
    report = ModelReport(Path(model_dir))
    try:
        config = load_config(report.model_dir)
    except ModelDirError as exc:
        report.add("config", False, str(exc))
        return report
    report.model_id = config.model_id
    report.add("config", True, f"{ENCODER_CONFIG_FILE}: {config.model_id}, {config.dimension}d")
    missing = [
        name
        for name in (config.onnx_file, config.tokenizer_file)
        if not (report.model_dir / name).is_file()
    ]
    if not report.add(
        "files", not missing, f"missing {', '.join(missing)}" if missing else "present"
    ):
        return report
    try:
        verify_sha256(report.model_dir, config)
    except ModelDirError as exc:
        report.add("sha256", False, str(exc))
        return report
    recorded = len(config.sha256)
    report.add("sha256", True, f"{recorded} file(s) match" if recorded else "none recorded")
    try:
        encoder = OnnxEncoder(report.model_dir, config, device=device)
    except (ModelDirError, ValueError) as exc:
        report.add("load", False, str(exc))
        return report
    report.provider = encoder.provider
    report.add("load", True, f"served by {encoder.provider}")
    _check_probe(report, encoder, config)
    return report


def _check_probe(report: ModelReport, encoder: OnnxEncoder, config: EncoderConfig) -> None:
    query = encoder.encode_queries([PROBE_QUERY])
    docs = encoder.encode_documents([PROBE_SIMILAR, PROBE_DISSIMILAR])
    expected = (config.dimension,)
    if not report.add(
        "shape",
        query.shape[1:] == expected and docs.shape == (2, config.dimension),
        f"query {query.shape}, documents {docs.shape}, dimension {config.dimension}",
    ):
        return
    vectors = np.vstack([query, docs])
    if not report.add("finite", bool(np.isfinite(vectors).all()), "all values finite"):
        return
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    if config.normalize:
        worst = float(np.abs(norms - 1.0).max())
        if not report.add(
            "unit norm", worst <= _UNIT_NORM_TOLERANCE, f"max |norm - 1| = {worst:.2e}"
        ):
            return
    cosines = (docs @ query[0]) / (norms[1:] * norms[0])
    similar, dissimilar = float(cosines[0]), float(cosines[1])
    report.add(
        "semantics",
        similar > dissimilar,
        f"paraphrase {similar:.3f} vs unrelated {dissimilar:.3f}",
    )
