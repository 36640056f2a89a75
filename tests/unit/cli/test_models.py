"""`hybridsearch models …` (cli/models.py): argument parsing, exit codes and one-line errors."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from hybridsearch.cli.models import add_models_commands


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hybridsearch")
    add_models_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_install_default_then_check(
    default_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    assert _run("models", "install-default", "--out", str(out)) == 0
    assert _run("models", "check", str(out), "--device", "cpu") == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{out}: OK"


def test_check_of_damaged_dir_exits_1(
    default_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "m"
    shutil.copytree(default_model_dir, target)
    (target / "model.onnx").write_bytes(b"broken")
    assert _run("models", "check", str(target), "--device", "cpu") == 1
    assert "FAIL sha256" in capsys.readouterr().out


def test_refused_install_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "data.txt").write_text("not a model")
    assert _run("models", "install-default", "--out", str(tmp_path / "occupied")) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("hybridsearch models install-default: error: ")
    assert "Traceback" not in captured.err


def test_export_of_non_checkpoint_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run("models", "export", "--from", str(tmp_path), "--out", str(tmp_path / "x"))
    assert code == 2
    assert "not a Hugging Face checkpoint" in capsys.readouterr().err


def test_export_options_are_parsed() -> None:
    parser = argparse.ArgumentParser(prog="hybridsearch")
    add_models_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "models",
            "export",
            "--from",
            "hf",
            "--out",
            "o",
            "--pooling",
            "cls",
            "--no-normalize",
            "--max-length",
            "512",
            "--query-prefix",
            "query: ",
            "--document-prefix",
            "passage: ",
        ]
    )
    assert (args.pooling, args.normalize, args.max_length) == ("cls", False, 512)
    assert (args.query_prefix, args.document_prefix) == ("query: ", "passage: ")
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["models", "export", "--from", "hf", "--out", "o", "--max-length", "0"])
    assert info.value.code == 2
