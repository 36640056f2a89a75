"""`collections list`: columns stay aligned whatever the names' length."""

from __future__ import annotations

from hybridsearch.cli.collections import list_table
from hybridsearch.v1 import collection_pb2 as pb


def test_long_names_widen_the_name_column_and_keep_the_others_aligned() -> None:
    infos = [
        pb.CollectionInfo(name="default", default=True, encoder_model_id="all-MiniLM-L6-v2-int8"),
        pb.CollectionInfo(
            name="papers-2",
            shard_count=2,
            document_count=1403,
            size_bytes=3441611,
            encoder_model_id="all-MiniLM-L6-v2-int8",
        ),
        pb.CollectionInfo(name="n" * 64, aliases=["live"]),
    ]
    lines = list_table(infos)
    assert lines[1].startswith("default *   ")
    assert lines[2].startswith("papers-2 (2 shards) ")
    docs_end = lines[0].index("DOCS") + len("DOCS")
    for line in lines[1:]:  # every count ends under the DOCS header
        assert line[docs_end - 1].isdigit() and line[docs_end] == " ", line
    assert lines[3].endswith("- (BM25 only)            -      live")


def test_short_names_keep_the_twenty_character_column() -> None:
    lines = list_table([pb.CollectionInfo(name="papers", document_count=1400)])
    assert lines[0].startswith("NAME" + " " * 16 + " " + "    DOCS")
    assert lines[1].startswith("papers" + " " * 14 + " " + "    1400")
