"""`hybridsearch index` in this process: the summary line."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from pathlib import Path

import pytest

from hybridsearch.cli.app import main
from hybridsearch.harness import CLI

CORPUS = "\n".join(f'{{"_id": "d{i}", "title": "", "text": "word{i % 5} text"}}' for i in range(30))


def test_summary_reports_documents_per_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(CORPUS + "\n")
    out = tmp_path / "index"
    assert main(["index", "--corpus", str(corpus), "--out", str(out),
                 "--no-dense", "--no-progress"]) == 0  # fmt: skip
    summary = capsys.readouterr().out
    found = re.search(
        r"indexed 30 documents into .* in ([0-9.]+) s \(([0-9.]+) documents/s\)", summary
    )
    assert found is not None, summary
    assert float(found.group(2)) > 0


def test_an_unreadable_corpus_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "latin1.jsonl"
    corpus.write_bytes(b'{"_id": "a", "text": "ok"}\n{"_id": "caf\xe9"}\n')
    truncated = tmp_path / "t.jsonl.gz"
    truncated.write_bytes(gzip.compress(CORPUS.encode() * 20)[:300])
    for path, message in [
        (corpus, "latin1.jsonl:2: malformed line: not UTF-8 (byte 0xe9"),
        (truncated, "t.jsonl.gz: truncated or damaged gzip"),
    ]:
        # ingest reads the corpus once before it connects (a malformed line it meets while
        # streaming: tests/integration/test_ingest_cli.py)
        for command in ("index", "ingest") if path is truncated else ("index",):
            target = ["--out", str(tmp_path / "idx")] if command == "index" else []
            argv = [command, "--corpus", str(path), *target, "--no-progress"]
            extra = ["--no-dense"] if command == "index" else ["--server", "127.0.0.1:1"]
            assert main([*argv, *extra]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert main(["index", "--corpus", str(corpus), "--out", str(tmp_path / "idx"),
                 "--no-dense", "--no-progress", "--skip-bad-lines"]) == 0  # fmt: skip
    assert "indexed 1 documents" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "q", "--top-k", "-1"], "argument --top-k: must be from 1 to 4294967295"),
        (["search", "q", "--top-k", "4294967296"], "argument --top-k: must be from 1 to"),
        (["search", "q", "--offset", "-1"], "argument --offset: must be from 0 to 4294967295"),
        (["search", "q", "--offset", "x"], "argument --offset: not an integer: 'x'"),
        (
            ["index", "--empty", "--out", "o", "--batch-size", "0"],
            "--batch-size: must be at least 1",
        ),
        (["index", "--empty", "--out", "o", "--hnsw-m", "1"], "--hnsw-m: must be from 2 to 512"),
        (
            ["index", "--empty", "--out", "o", "--hnsw-m", "100000000"],
            "argument --hnsw-m: must be from 2 to 512 (got 100000000)",
        ),
        (["index", "--empty", "--out", "o", "--hnsw-ef-construction", "0"], "from 1 to 10000"),
        (
            ["index", "--empty", "--out", "o", "--hnsw-ef-construction", "200000"],
            "argument --hnsw-ef-construction: must be from 1 to 10000 (got 200000)",
        ),
        (["eval", "--index", "i", "--top-k", "0"], "argument --top-k: must be at least 1"),
    ],
)
def test_out_of_range_numeric_flags_are_one_line_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_an_out_under_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a directory")
    out = tmp_path / "file" / "idx"
    assert main(["index", "--empty", "--out", str(out), "--no-dense", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot create {tmp_path / 'file'}: File exists\n", err


def test_progress_bars_stay_off_a_stderr_that_is_not_a_terminal(tmp_path: Path) -> None:
    """A log file gets no bar redraws (``\\r``, cursor-up escapes) without --no-progress: the
    progress comes as plain lines."""
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(CORPUS + "\n")
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        done = subprocess.run(
            [*CLI, "index", "--corpus", str(corpus), "--out", str(tmp_path / "index"),
             "--no-dense"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, check=False, timeout=300,
        )  # fmt: skip
    written = log.read_bytes()  # bytes: text mode would read each "\r" as a line end
    assert done.returncode == 0, written
    assert b"\r" not in written and b"\x1b[" not in written, written[:300]
    # the progress still shows, as plain lines (one at the start, one at the end at least)
    lines = [line for line in written.decode().splitlines() if line.startswith("reading + BM25")]
    assert len(lines) >= 2 and "30/30" in lines[-1], written[:300]
    assert "indexed 30 documents" in done.stdout


@pytest.mark.parametrize(
    "flags",
    [[], ["--shards", "2"], ["--sparse-backend", "lucene"]],
    ids=["single", "sharded", "lucene"],
)
@pytest.mark.parametrize("where", ["a file in it", "the directory itself"])
def test_force_refuses_a_corpus_inside_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], where: str
) -> None:
    """Replacing --out would delete a corpus kept in it: refused before any work, naming both."""
    out = tmp_path / "idx"
    source = tmp_path / "corpus.jsonl"
    source.write_text(CORPUS + "\n")
    assert main(["index", "--corpus", str(source), "--out", str(out),
                 "--no-dense", "--no-progress"]) == 0  # fmt: skip
    kept = out / "corpus.jsonl"
    kept.write_text(CORPUS + "\n")
    corpus = kept if where == "a file in it" else out
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    code = main(["index", "--corpus", str(corpus), "--out", str(out), "--no-dense",
                 "--no-progress", "--force", *flags])  # fmt: skip
    err = capsys.readouterr().err
    verb = "is inside" if where == "a file in it" else "is"
    assert code == 2
    assert err == (
        f"error: {corpus} {verb} {out}: replacing {out} would delete it; keep what a build "
        "reads outside the index directory\n"
    ), err
    assert kept.read_text() == CORPUS + "\n"
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_corpus_directory_holding_out_is_fine(tmp_path: Path) -> None:
    """Only a corpus inside --out is at risk: a corpus directory that holds --out is not."""
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    (corpus_dir / "a.jsonl").write_text(CORPUS + "\n")
    out = corpus_dir / "idx"
    for _ in range(2):
        assert main(["index", "--corpus", str(corpus_dir), "--out", str(out),
                     "--no-dense", "--no-progress", "--force"]) == 0  # fmt: skip
    assert (corpus_dir / "a.jsonl").read_text() == CORPUS + "\n"


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys")
def test_an_out_whose_parent_refuses_writes_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """/sys refuses a new directory to anyone, root included (EPERM, or EROFS read-only)."""
    out = Path("/sys/hybridsearch-test-index")
    assert main(["index", "--empty", "--out", str(out), "--no-dense", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"error: cannot create {out}: [A-Z][^\n]+\n", err), err


def test_a_lone_surrogate_escape_is_a_malformed_line_of_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON's "\\ud83d" without its pair: a string no index can store (no UTF-8 form)."""
    corpus = tmp_path / "surrogate.jsonl"
    corpus.write_text(
        '{"_id": "a", "text": "fine"}\n'
        '{"_id": "b", "title": "\\ud83d", "text": "' + "long " * 1000 + '"}\n'
        '{"_id": "c", "text": "t", "metadata": {"tag": "\\ud83d"}}\n'
    )
    out = tmp_path / "idx"
    argv = ["index", "--corpus", str(corpus), "--out", str(out), "--no-dense", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {corpus}:2: malformed line: title: not valid Unicode "
        "(a lone surrogate \\ud83d at character 1)\n"
    )
    assert not out.exists()
    assert main([*argv, "--skip-bad-lines"]) == 0
    summary = capsys.readouterr().out
    assert "indexed 1 documents" in summary and "bad lines skipped: 2" in summary, summary


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--no-dense", "--model", "/nonexistent"], "--model has no use with --no-dense"),
        (["--no-dense", "--dense-index", "hnsw"], "--dense-index hnsw needs vectors"),
        (["--no-dense", "--bm25-k1", "nan"], "--bm25-k1 applies to --sparse-backend lucene only"),
        (["--no-dense", "--bm25-b", "2"], "--bm25-b applies to --sparse-backend lucene only"),
        (["--no-dense", "--lucene-threads", "0"], "--lucene-threads applies to"),
        (["--no-dense", "--ray-encoders", "0"], "--ray-encoders needs --ray"),
        (["--no-dense", "--ray-encoder-cpus", "-1"], "--ray-encoder-cpus needs --ray"),
    ],
)
def test_a_flag_the_build_would_ignore_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    """Each was accepted and ignored (exit 0: a build other than the one asked for)."""
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(CORPUS + "\n")
    out = tmp_path / "idx"
    code = main(["index", "--corpus", str(corpus), "--out", str(out), "--no-progress", *flags])
    assert code == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["index", "--corpus", "", "--out", "idx", "--no-dense"],
        ["index", "--sample", "--out", "", "--no-dense"],
        ["ingest", "--corpus", "", "--server", "127.0.0.1:1"],
        ["compact", ""],
        ["shards", "split", "--from-index", "", "--shards", "2", "--out", "x"],
    ],
)
def test_an_empty_path_is_refused_not_read_as_the_current_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """`--corpus "$UNSET"` indexed every corpus file of the working directory."""
    with pytest.raises(SystemExit) as usage:
        main(argv)
    assert usage.value.code == 2
    assert "an empty path (an unset shell variable?)" in capsys.readouterr().err


def test_an_out_that_is_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It ended in tantivy's UnicodeEncodeError traceback (a path is bytes; tantivy takes
    only UTF-8 ones)."""
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(CORPUS + "\n")
    out = tmp_path / os.fsdecode(b"caf\xe9")
    code = main(["index", "--corpus", str(corpus), "--out", str(out), "--no-dense",
                 "--no-progress"])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: {os.fsencode(out)!r}: not a UTF-8 path; tantivy opens an index only by one\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl"]
