"""Replacing an index (`index --force`): refused under a writer; a crash leaves old or new."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridsearch.cli.app import main
from hybridsearch.errors import BuildError, IndexLockedError
from hybridsearch.sharding.build_local import build_sharded
from hybridsearch.sharding.layout import is_sharded, load_shard_manifest
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.lock import WriterLock
from hybridsearch.storage.replace import recover_replacement
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document


def corpus(tag: str, count: int) -> list[Document]:
    return [Document(f"{tag}{i}", "", f"common {tag} {i}") for i in range(count)]


def dead_pid() -> int:
    """The pid of a process that has exited (only its name matters: liveness is the lock)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_force_is_refused_while_a_writer_holds_the_index(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    build_index(corpus("old", 3), idx, encoder=None)
    writer = IndexWriter(idx)  # what `serve` holds
    try:
        with pytest.raises(IndexLockedError, match="being written by another process"):
            build_index(corpus("new", 2), idx, encoder=None, force=True)
        # The writer's index is untouched and its commits still land in it.
        writer.upsert([Document("live", "", "common live")], None)
    finally:
        writer.close()
    assert open_index(idx).ids == ["old0", "old1", "old2", "live"]
    assert names(tmp_path) == ["idx"]


def test_a_writer_that_opens_during_the_build_stops_the_swap(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    build_index(corpus("old", 3), idx, encoder=None)
    writers: list[IndexWriter] = []

    def docs() -> Iterator[Document]:
        writers.append(IndexWriter(idx))  # a server starts after the build's first check
        yield from corpus("new", 2)

    try:
        with pytest.raises(IndexLockedError):
            build_index(docs(), idx, encoder=None, force=True)
        writers[0].upsert([Document("live", "", "common live")], None)
    finally:
        writers[0].close()
    assert open_index(idx).ids == ["old0", "old1", "old2", "live"]
    assert names(tmp_path) == ["idx"]


def test_cli_force_on_a_served_index_says_so_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "corpus.jsonl"
    source.write_text('{"_id": "d0", "title": "", "text": "some text"}\n')
    idx = tmp_path / "idx"
    build_index(corpus("old", 3), idx, encoder=None)
    writer = IndexWriter(idx)
    try:
        code = main(["index", "--corpus", str(source), "--out", str(idx),
                     "--no-dense", "--no-progress", "--force"])  # fmt: skip
    finally:
        writer.close()
    err = capsys.readouterr().err
    assert code != 0
    assert "being written by another process" in err and "Traceback" not in err
    assert open_index(idx).ids == ["old0", "old1", "old2"]


@pytest.mark.parametrize("run", ["open", "build"])
def test_an_index_moved_aside_by_a_killed_build_is_put_back(tmp_path: Path, run: str) -> None:
    # What a build killed between its two renames leaves: the old index and the new one
    # beside the path, under the dead build's pid; nothing at the path.
    idx = tmp_path / "idx"
    build_index(corpus("old", 3), idx, encoder=None)
    build_index(corpus("new", 2), tmp_path / "new", encoder=None)
    pid = dead_pid()
    idx.rename(tmp_path / f".idx.old-{pid}")
    (tmp_path / "new").rename(tmp_path / f".idx.building-{pid}")
    if run == "open":
        assert open_index(idx).ids == ["old0", "old1", "old2"]
    else:
        build_index(corpus("third", 1), idx, encoder=None, force=True)
        assert open_index(idx).ids == ["third0"]
    assert names(tmp_path) == ["idx"]


def test_a_killed_first_build_leaves_nothing_after_the_next_build(tmp_path: Path) -> None:
    build_index(corpus("new", 2), tmp_path / "partial", encoder=None)
    (tmp_path / "partial").rename(tmp_path / f".idx.building-{dead_pid()}")
    build_index(corpus("next", 1), tmp_path / "idx", encoder=None)
    assert names(tmp_path) == ["idx"]


def test_a_running_build_s_directories_are_left_alone(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    build_index(corpus("old", 1), idx, encoder=None)
    running = tmp_path / f".idx.building-{os.getpid() + 1}"
    running.mkdir()
    lock = WriterLock(running)  # its build holds it
    try:
        build_index(corpus("new", 1), idx, encoder=None, force=True)
        assert running.is_dir()
    finally:
        lock.release()
    build_index(corpus("newer", 1), idx, encoder=None, force=True)
    assert names(tmp_path) == ["idx"]


def test_sigkill_between_the_renames_leaves_the_old_index(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    build_index(corpus("old", 3), idx, encoder=None)
    # The child kills itself right after the first rename (the index moved aside).
    child = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from hybridsearch.storage import replace
        from hybridsearch.storage.builder import build_index
        from hybridsearch.types import Document
        real = os.replace
        def dying(a, b):
            real(a, b)
            if str(a) == {str(idx)!r}:
                os.kill(os.getpid(), signal.SIGKILL)
        replace.os.replace = dying
        build_index([Document("new", "", "common new")], Path({str(idx)!r}), encoder=None,
                    force=True)
    """)
    done = subprocess.run([sys.executable, "-c", child], env=os.environ.copy(), check=False)
    assert done.returncode == -signal.SIGKILL
    assert not idx.exists()
    assert open_index(idx).ids == ["old0", "old1", "old2"]
    assert names(tmp_path) == ["idx"]


def sharded_ids(root: Path) -> list[list[str]]:
    return [open_index(p).ids for p in load_shard_manifest(root).shard_paths(root)]


def test_force_is_refused_while_a_writer_holds_one_shard(tmp_path: Path) -> None:
    """A sharded collection's writers hold their shards' locks, not the collection's: a
    rebuild with --force must not move the collection from under them (their next commits
    would go into the moved copy, and be deleted with it)."""
    out = tmp_path / "coll"
    build_sharded(corpus("old", 6), out, 2, encoder=None)
    before = sharded_ids(out)
    shard = load_shard_manifest(out).shard_paths(out)[1]
    writer = IndexWriter(shard)  # what a shard's writer replica holds
    try:
        with pytest.raises(IndexLockedError, match="being written by another process"):
            build_sharded(corpus("new", 4), out, 2, encoder=None, force=True)
        writer.upsert([Document("live", "", "common live")], None)
    finally:
        writer.close()
    assert sharded_ids(out) == [before[0], [*before[1], "live"]]
    assert names(tmp_path) == ["coll"]
    build_sharded(corpus("new", 4), out, 2, encoder=None, force=True)  # no writer now: replaced
    assert sorted(i for ids in sharded_ids(out) for i in ids) == [f"new{i}" for i in range(4)]
    assert names(tmp_path) == ["coll"]


def test_a_sharded_collection_moved_aside_by_a_killed_build_is_put_back(
    tmp_path: Path,
) -> None:
    out = tmp_path / "coll"
    build_sharded(corpus("old", 6), out, 2, encoder=None)
    before = sharded_ids(out)
    pid = dead_pid()
    out.rename(tmp_path / f".coll.old-{pid}")  # killed between the two renames
    assert is_sharded(out)  # an open puts it back
    assert sharded_ids(out) == before
    assert names(tmp_path) == ["coll"]


def test_a_running_sharded_build_s_staging_is_left_alone(tmp_path: Path) -> None:
    """A sharded build's staging is locked by its build, so another build's recovery does
    not delete it (it did: the staging had no lock)."""
    out = tmp_path / "coll"
    seen: list[list[str]] = []

    def docs() -> Iterator[Document]:
        seen.append(names(tmp_path))
        build_index(corpus("x", 1), tmp_path / "single", encoder=None)
        recover_replacement(out)  # what a build or open of ``out`` elsewhere runs first
        seen.append(names(tmp_path))
        yield from corpus("new", 4)

    build_sharded(docs(), out, 2, encoder=None)
    staging = f".coll.building-shards-{os.getpid()}"
    assert staging in seen[0] and staging in seen[1]
    assert names(tmp_path) == ["coll", "single"]


# What is at the target is checked again at the swap: the build's documents are read after
# the start's checks, so a generator of documents stands for whatever happens at the target
# during a build of minutes (another build finishing first, a directory made by hand).


def tree(directory: Path) -> list[str]:
    """Every path under ``directory``, relative: what a failed swap must leave as it was."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.mark.parametrize("made", ["a directory of files", "an empty directory", "a file"])
def test_a_target_made_during_the_build_is_not_replaced(tmp_path: Path, made: str) -> None:
    out = tmp_path / "out"

    def docs() -> Iterator[Document]:
        yield from corpus("new", 2)
        if made == "a file":
            out.write_text("notes")
        else:
            out.mkdir()
            if made == "a directory of files":
                (out / "important.txt").write_text("precious")

    with pytest.raises(BuildError, match=r"out appeared while this build ran.*--force"):
        build_index(docs(), out, encoder=None)
    assert names(tmp_path) == ["out"]  # the staging directory is gone
    if made == "a file":
        assert out.read_text() == "notes"
    else:  # not even a lock file made in it
        assert tree(out) == (["important.txt"] if made == "a directory of files" else [])


def test_of_two_builds_of_one_target_the_second_to_finish_fails(tmp_path: Path) -> None:
    """Neither has --force: the index of the first to finish stays (it was replaced)."""
    out = tmp_path / "idx"

    def docs() -> Iterator[Document]:
        yield from corpus("slow", 3)
        build_index(corpus("fast", 2), out, encoder=None)  # starts later, finishes first

    with pytest.raises(BuildError, match="appeared while this build ran"):
        build_index(docs(), out, encoder=None)
    assert open_index(out).ids == ["fast0", "fast1"]
    assert names(tmp_path) == ["idx"]


def test_force_does_not_replace_a_directory_that_became_no_index(tmp_path: Path) -> None:
    """With --force the swap replaces only what the start would have: here the index the
    build was started over gave way, during the build, to a directory that is none."""
    out = tmp_path / "idx"
    build_index(corpus("old", 2), out, encoder=None)

    def docs() -> Iterator[Document]:
        yield from corpus("new", 2)
        shutil.rmtree(out)
        out.mkdir()
        (out / "thesis.tex").write_text("years of work")

    with pytest.raises(BuildError, match="idx exists and is not a hybridsearch index"):
        build_index(docs(), out, encoder=None, force=True)
    assert tree(out) == ["thesis.tex"]
    assert names(tmp_path) == ["idx"]


def test_force_replaces_an_index_made_during_the_build(tmp_path: Path) -> None:
    out = tmp_path / "idx"

    def docs() -> Iterator[Document]:
        yield from corpus("new", 2)
        build_index(corpus("other", 1), out, encoder=None)

    build_index(docs(), out, encoder=None, force=True)
    assert open_index(out).ids == ["new0", "new1"]
    assert names(tmp_path) == ["idx"]


def test_a_sharded_build_does_not_replace_a_directory_made_during_it(tmp_path: Path) -> None:
    """The sharded builds (local, Ray, `shards split`) commit through the same swap."""
    out = tmp_path / "coll"

    def docs() -> Iterator[Document]:
        yield from corpus("new", 4)
        out.mkdir()
        (out / "important.txt").write_text("precious")

    with pytest.raises(BuildError, match="coll appeared while this build ran"):
        build_sharded(docs(), out, 2, encoder=None)
    assert tree(out) == ["important.txt"]
    assert names(tmp_path) == ["coll"]
