"""`hybridsearch index --shards N` in this process, and the flags' errors (no Ray started)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hybridsearch.cli.app import main
from hybridsearch.sharding.layout import load_shard_manifest

CORPUS = "\n".join(f'{{"_id": "d{i}", "title": "", "text": "word{i % 5} text"}}' for i in range(30))


@pytest.mark.parametrize(("shards", "said"), [(3, "(3 shards)"), (1, "(1 shard)")])
def test_shards_builds_a_sharded_collection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shards: int, said: str
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(CORPUS + "\n")
    out = tmp_path / "sharded"
    assert main(["index", "--corpus", str(corpus), "--out", str(out), "--shards", str(shards),
                 "--no-dense", "--no-progress"]) == 0  # fmt: skip
    assert load_shard_manifest(out).shard_count == shards
    assert f"indexed 30 documents into {out} {said}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--shards", "0"], "--shards must be in [1, 1024]"),
        (["--shards", "2", "--ray-encoders", "2"], "--ray-encoders needs --ray"),
        (["--ray", "auto", "--ray-encoder-cpus", "0"], "--ray-encoder-cpus must be positive"),
    ],
)
def test_bad_sharding_flags_name_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    argv = ["index", "--corpus", str(tmp_path), "--out", str(tmp_path / "o"), *flags]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_ray_missing_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(CORPUS + "\n")
    argv = ["index", "--corpus", str(corpus), "--out", str(tmp_path / "o"), "--ray", "auto",
            "--no-dense"]  # fmt: skip
    assert main(argv) == 2
    assert "pip install -e '.[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_empty_builds_still_work(tmp_path: Path) -> None:
    assert main(["index", "--empty", "--out", str(tmp_path / "plain"), "--no-dense"]) == 0
    assert main(["index", "--empty", "--out", str(tmp_path / "sharded"), "--shards", "2",
                 "--no-dense", "--no-progress"]) == 0  # fmt: skip
    assert load_shard_manifest(tmp_path / "sharded").shard_count == 2
