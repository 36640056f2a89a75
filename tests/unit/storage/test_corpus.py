"""Corpus readers: BEIR and Pyserini formats, gzip, malformed lines."""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from hybridsearch.errors import CorpusError
from hybridsearch.storage.corpus import ReadStats, count_lines, read_corpus


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_reads_beir_with_metadata(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "c.jsonl",
        [json.dumps({"_id": "1", "title": "T", "text": "body", "metadata": {"k": [1]}})],
    )
    [doc] = list(read_corpus(path))
    assert (doc.id, doc.title, doc.text, dict(doc.metadata)) == ("1", "T", "body", {"k": [1]})


def test_reads_pyserini_gzip_and_directories(tmp_path: Path) -> None:
    folder = tmp_path / "coll"
    folder.mkdir()
    with gzip.open(folder / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "y", "contents": "second"}) + "\n")
    write_lines(folder / "a.jsonl", [json.dumps({"id": "x", "contents": "first"}), ""])
    docs = list(read_corpus(folder))
    assert [(d.id, d.text, d.title) for d in docs] == [("x", "first", ""), ("y", "second", "")]
    assert count_lines(folder) == 3


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"title": "no id"}),
        json.dumps({"_id": "", "text": "empty id"}),
        # ids every API call refuses (GetDocument, DeleteDocuments, UpsertDocuments)
        json.dumps({"_id": "L" * 513, "text": "id over 512 bytes"}),
        json.dumps({"_id": "é" * 257, "text": "514 bytes in UTF-8"}),
        json.dumps({"_id": "nul\u0000id", "text": "NUL in the id"}),
        json.dumps({"_id": "1", "text": 5}),
        json.dumps({"_id": "1", "text": "t", "metadata": [1]}),
        # Python's JSON reads these; a response's Struct cannot carry them.
        '{"_id": "1", "text": "t", "metadata": {"w": NaN}}',
        '{"_id": "1", "text": "t", "metadata": {"w": [1, {"v": -Infinity}]}}',
        '{"_id": "1", "text": "t", "metadata": {"n": 1' + "0" * 400 + "}}",
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad: str) -> None:
    path = write_lines(tmp_path / "c.jsonl", [json.dumps({"_id": "1", "text": "ok"}), bad])
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: malformed line"):
        list(read_corpus(path))


def test_skip_bad_lines_counts_them(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "c.jsonl",
        ["garbage", json.dumps({"_id": "1", "text": "ok"}), "{", json.dumps({"_id": 2})],
    )
    stats = ReadStats()
    docs = list(read_corpus(path, skip_bad_lines=True, stats=stats))
    assert [d.id for d in docs] == ["1", "2"]
    assert (stats.bad_lines, stats.bad_line_numbers, stats.documents) == (2, [1, 3], 2)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        list(read_corpus(tmp_path / "nope.jsonl"))


def test_a_pipe_is_not_taken_for_a_missing_file(tmp_path: Path) -> None:
    """/dev/stdin or a FIFO exists: it said "no such file or directory"."""
    fifo = tmp_path / "corpus.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(CorpusError, match=r"corpus.jsonl: not a regular file or a directory"):
        list(read_corpus(fifo))


def latin1_corpus(path: Path, bad_line: int = 15, lines: int = 20) -> Path:
    """``lines`` documents, each about 1 KB (the bad byte lies past a text decoder's first
    chunk), line ``bad_line`` with a Latin-1 "é" (0xE9), not UTF-8."""
    rows = [json.dumps({"_id": f"d{i}", "text": "x" * 1000}).encode() for i in range(1, lines + 1)]
    rows[bad_line - 1] = b'{"_id": "caf\xe9", "text": "latin-1"}'
    path.write_bytes(b"".join(row + b"\n" for row in rows))
    return path


def test_a_byte_that_is_not_utf8_is_a_malformed_line_with_its_own_number(tmp_path: Path) -> None:
    path = latin1_corpus(tmp_path / "latin1.jsonl")
    with pytest.raises(
        CorpusError, match=r"latin1\.jsonl:15: malformed line: not UTF-8 \(byte 0xe9"
    ):
        list(read_corpus(path))
    stats = ReadStats()
    docs = list(read_corpus(path, skip_bad_lines=True, stats=stats))
    assert len(docs) == 19 and stats.bad_line_numbers == [15]
    assert count_lines(path) == 20


def test_a_truncated_gzip_is_one_error_naming_the_file(tmp_path: Path) -> None:
    whole = gzip.compress(
        b"".join(json.dumps({"_id": f"d{i}"}).encode() + b"\n" for i in range(500))
    )
    path = tmp_path / "trunc.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    # Counting reads blocks: the lines before the damage in its block are not known, so it
    # names no line ("after line 0" misled, with hundreds of lines before the cut).
    with pytest.raises(CorpusError, match=r"trunc\.jsonl\.gz: truncated or damaged gzip \(.*\)$"):
        count_lines(path)
    with pytest.raises(CorpusError, match=r"trunc\.jsonl\.gz: truncated or damaged gzip") as read:
        list(read_corpus(path, skip_bad_lines=True))
    assert re.search(r", after line [1-9][0-9]*$", str(read.value)), read.value


def test_a_parquet_file_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    path.write_bytes(b"PAR1\x15\x04\x15\xde\x01" + b"\x00" * 64 + b"PAR1")
    for read in (count_lines, lambda p: list(read_corpus(p))):
        with pytest.raises(CorpusError, match=r"c\.parquet: a Parquet file; .*--ray"):
            read(path)


@pytest.mark.parametrize("compress", [False, True])
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_line(
    tmp_path: Path, compress: bool
) -> None:
    data = b"\xef\xbb\xbf" + b"".join(
        json.dumps({"_id": f"d{i}", "text": "t"}).encode() + b"\r\n" for i in range(3)
    )
    path = tmp_path / "bom.jsonl"
    path.write_bytes(gzip.compress(data) if compress else data)
    assert [d.id for d in read_corpus(path)] == ["d0", "d1", "d2"]


def test_an_id_of_512_bytes_is_read(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [json.dumps({"_id": "L" * 512, "text": "t"})])
    assert [len(d.id) for d in read_corpus(path)] == [512]


def pyserini(i: int) -> dict[str, str]:
    return {"id": f"p{i}", "contents": f"contents {i}"}


def test_pyserini_json_files_may_hold_an_array_or_pretty_printed_objects(tmp_path: Path) -> None:
    folder = tmp_path / "pyserini"
    folder.mkdir()
    write_lines(folder / "a.jsonl", [json.dumps(pyserini(i)) for i in range(3)])
    (folder / "b.json").write_text(json.dumps([pyserini(i) for i in range(3, 8)], indent=2))
    (folder / "c.json").write_text(json.dumps(pyserini(8), indent=4) + "\n")
    (folder / "d.json").write_text("[]\n")
    with gzip.open(folder / "e.json.gz", "wt", encoding="utf-8") as handle:  # two, pretty
        handle.write(json.dumps(pyserini(9), indent=1) + json.dumps(pyserini(10), indent=1))
    write_lines(folder / "f.json", [json.dumps(pyserini(11)), json.dumps(pyserini(12))])
    stats = ReadStats()
    docs = list(read_corpus(folder, stats=stats))
    assert [d.id for d in docs] == [f"p{i}" for i in range(13)]
    assert docs[4].text == "contents 4"
    assert stats.documents == 13


def test_a_document_in_a_json_array_is_named_by_the_line_it_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps([pyserini(0), {"id": "x"}, pyserini(2)], indent=2))
    stats = ReadStats()
    assert [d.id for d in read_corpus(path, skip_bad_lines=True, stats=stats)] == ["p0", "p2"]
    assert stats.bad_line_numbers == [6]  # [, {, id, contents, }, { <- line 6
    with pytest.raises(CorpusError, match=r"b\.json:6: malformed line: expected BEIR"):
        list(read_corpus(path))
    path.write_text('[\n  {"id": "a", "contents": "x"},\n  {"id": "b", "contents": }\n]\n')
    with pytest.raises(CorpusError, match=r"b\.json:3: malformed JSON: Expecting value"):
        list(read_corpus(path, skip_bad_lines=True))
    path.write_text('[\n  {"id": "a", "contents": "x"}\n')
    with pytest.raises(CorpusError, match=r"b\.json:3: malformed JSON: the array is not closed"):
        list(read_corpus(path))


def test_a_json_lines_file_named_json_keeps_its_skippable_bad_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.json", ["{bad", json.dumps(pyserini(1)), "nope"])
    stats = ReadStats()
    assert [d.id for d in read_corpus(path, skip_bad_lines=True, stats=stats)] == ["p1"]
    assert stats.bad_line_numbers == [1, 3]


def test_a_directory_mixing_json_lines_and_parquet_is_refused(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", [json.dumps({"_id": "1", "text": "a"})])
    (tmp_path / "b.parquet").write_bytes(b"PAR1")
    with pytest.raises(CorpusError, match=r"mixes JSON-lines .* and Parquet .* files"):
        list(read_corpus(tmp_path))
    (tmp_path / "a.jsonl").unlink()
    with pytest.raises(CorpusError, match=r"Parquet corpora need `index --ray`"):
        list(read_corpus(tmp_path))


#: JSON lines whose strings hold a lone surrogate escape (Python's JSON reader decodes it to a
#: code point that has no UTF-8 form), and what the malformed-line error says of each.
LONE_SURROGATE_LINES = [
    (r'{"_id": "1", "title": "\ud83d", "text": "t"}', r"title: not valid Unicode "
     r"\(a lone surrogate \\ud83d at character 1\)"),
    (r'{"_id": "1", "text": "long text \ude00 more"}', r"text: .* \\ude00 at character 11\)"),
    (r'{"_id": "\udc80", "text": "t"}', r"id is not valid Unicode \(a lone surrogate \\udc80"),
    (r'{"_id": "1", "text": "t", "metadata": {"tag": "\ud83d"}}', r"metadata\.tag: not valid"),
    (r'{"_id": "1", "text": "t", "metadata": {"a": [1, {"b": "\ud800"}]}}',
     r"metadata\.a\[1\]\.b: not valid Unicode"),
    (r'{"_id": "1", "text": "t", "metadata": {"k\udfff": 1}}', r"metadata: a key is not valid"),
    (r'{"id": "1", "contents": "\ud83d"}', r"text: not valid Unicode"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "message"), LONE_SURROGATE_LINES)
def test_a_lone_surrogate_is_a_malformed_line_that_can_be_skipped(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write_lines(tmp_path / "c.jsonl", [json.dumps({"_id": "0", "text": "ok"}), line])
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: malformed line: " + message):
        list(read_corpus(path))
    stats = ReadStats()
    assert [d.id for d in read_corpus(path, skip_bad_lines=True, stats=stats)] == ["0"]
    assert stats.bad_line_numbers == [2]


def test_a_surrogate_pair_escape_is_one_character(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [r'{"_id": "1", "text": "smile \ud83d\ude00"}'])
    [doc] = list(read_corpus(path))
    assert doc.text == "smile \U0001f600"


def test_a_directory_that_cannot_be_listed_is_one_error(tmp_path: Path) -> None:
    """Seen as a user without the permissions (root may list and enter any directory)."""
    unlistable, unsearchable = Path("unlistable"), Path("unsearchable")  # in tmp_path
    tmp_path.chmod(0o711)  # any user may look up a name in it
    for folder in (unlistable, unsearchable):
        (tmp_path / folder).mkdir()
        write_lines(tmp_path / folder / "a.jsonl", [json.dumps({"_id": "1", "text": "a"})])
    (tmp_path / unlistable).chmod(0o111)  # no listing; a file named in it opens
    (tmp_path / unsearchable).chmod(0o444)  # a listing, but nothing in it can be looked at
    paths = [unlistable, unlistable / "a.jsonl", unsearchable, unsearchable / "a.jsonl"]
    try:
        errors = unprivileged(lambda: [_corpus_error(path) for path in paths], tmp_path)
    finally:
        (tmp_path / unlistable).chmod(0o700)
        (tmp_path / unsearchable).chmod(0o700)
    denied = "cannot read (Permission denied)"
    assert errors == [f"unlistable: {denied}", "", f"unsearchable: {denied}",
                      f"unsearchable/a.jsonl: {denied}"]  # fmt: skip


def test_the_distributed_build_names_a_directory_it_cannot_list(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="pyarrow comes with the extra ray")
    from hybridsearch.sharding.ray_source import find_source

    def error(corpus: str) -> str:
        try:
            find_source(corpus)
        except CorpusError as exc:
            return str(exc)
        return ""

    tmp_path.chmod(0o711)
    (tmp_path / "unlistable").mkdir(mode=0o111)
    try:
        errors = unprivileged(lambda: [error("unlistable")], tmp_path)
    finally:
        (tmp_path / "unlistable").chmod(0o700)
    assert errors == [f"{tmp_path / 'unlistable'}: cannot read (Permission denied)"]


def _corpus_error(path: Path) -> str:
    """The `CorpusError` reading ``path`` raises, or "" when it reads."""
    try:
        list(read_corpus(path))
    except CorpusError as exc:
        return str(exc)
    return ""


def unprivileged(check: Callable[[], list[str]], cwd: Path) -> list[str]:
    """``check()`` run in a forked child in the directory ``cwd`` (so that relative paths
    need no permission on its parents), as user nobody when this process is root."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child ends in os._exit)
        code = 1
        try:
            os.close(reader)
            os.chdir(cwd)
            if os.geteuid() == 0:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            try:
                result = check()
            except Exception as exc:  # shown in the test's failure, not as the child's
                result = [f"{type(exc).__name__}: {exc}"]
            os.write(writer, json.dumps(result).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as answer:
        data = answer.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, data
    answer_list: list[str] = json.loads(data)
    return answer_list


NOBODY = 65534
