"""`hybridsearch ingest`: stream a corpus into a running server through UpsertDocuments."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridsearch.cli.channel import (
    add_channel_arguments,
    call_metadata,
    open_channel,
    report_rpc_error,
    status_details,
)
from hybridsearch.cli.flag_types import path_arg, timeout_seconds
from hybridsearch.errors import HybridSearchError, echo
from hybridsearch.progress import bar_options
from hybridsearch.storage.corpus import ReadStats, count_lines, read_corpus
from hybridsearch.types import Document
from hybridsearch.v1 import index_pb2 as pb

if TYPE_CHECKING:
    import grpc

DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024  # well under the server's default 16 MiB message limit
SHOWN_REJECTIONS = 20


def document_to_proto(doc: Document) -> pb.Document:
    """A proto Document for a corpus document."""
    message = pb.Document(id=doc.id, title=doc.title, text=doc.text)
    if doc.metadata:
        message.metadata.update(dict(doc.metadata))
    return message


def upsert_requests(
    docs: Iterable[Document],
    batch_size: int,
    on_batch: Any = None,
    *,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    collection: str = "",
    on_document: Callable[[Document, int], object] | None = None,
) -> Iterator[pb.UpsertDocumentsRequest]:
    """Batches of at most ``batch_size`` documents and ``max_batch_bytes`` (a single larger
    document travels alone), each naming ``collection`` (empty: the server's default).
    ``on_document`` sees each document and its size in bytes as it is read."""
    request = pb.UpsertDocumentsRequest(collection=collection)
    size = 0
    for doc in docs:
        message = document_to_proto(doc)
        message_size = message.ByteSize()
        if on_document is not None:
            on_document(doc, message_size)
        if request.documents and (
            len(request.documents) >= batch_size or size + message_size > max_batch_bytes
        ):
            yield request
            if on_batch is not None:
                on_batch(len(request.documents))
            request, size = pb.UpsertDocumentsRequest(collection=collection), 0
        request.documents.append(message)
        size += message_size
    if request.documents:
        yield request
        if on_batch is not None:
            on_batch(len(request.documents))


def corpus_places(corpus: Path, wanted: dict[int, str], *, skip_bad_lines: bool) -> dict[int, str]:
    """FILE:LINE of the documents at the stream positions in ``wanted`` (position -> id),
    found by reading the corpus again as the ingest read it (so nothing per document is kept
    while streaming). A position whose document now has another id (the file changed) or
    that the read no longer reaches is left out."""
    places: dict[int, str] = {}
    if not wanted:
        return places
    last = max(wanted)
    stats = ReadStats()
    try:
        for position, doc in enumerate(
            read_corpus(corpus, skip_bad_lines=skip_bad_lines, stats=stats)
        ):
            if wanted.get(position) == doc.id:
                places[position] = f"{stats.file}:{stats.line}"
            if position >= last:
                break
    except (HybridSearchError, OSError):
        pass  # the places are a courtesy: the summary stands without them
    return places


def print_summary(
    response: pb.UpsertDocumentsResponse,
    stats: ReadStats,
    places: dict[int, str] | None = None,
) -> None:
    """The server's summary, with the first rejections (each with its corpus FILE:LINE when
    ``places`` has it)."""
    print(
        f"accepted {response.accepted_count} documents ({response.replaced_count} replaced an "
        f"existing id); rejected {response.rejected_count}; index generation "
        f"{response.generation}; bad lines skipped: {stats.bad_lines}"
    )
    places = places or {}
    for rejected in response.rejected[:SHOWN_REJECTIONS]:
        place = places.get(rejected.position)
        where = f" ({place})" if place else ""
        print(f"  rejected #{rejected.position}{where} id {rejected.id!r}: {rejected.reason}")
    shown = min(len(response.rejected), SHOWN_REJECTIONS)
    if response.rejected_count > shown:  # a failed stream's partial response lists only the first
        print(f"  ... and {response.rejected_count - shown} more")


def partial_response(error: grpc.RpcError) -> pb.UpsertDocumentsResponse | None:
    """The response so far that a failed UpsertDocuments stream carries in its status
    details (None when it carries none: the server never answered, or is older)."""
    for detail in status_details(error):
        partial = pb.UpsertDocumentsResponse()
        if detail.Unpack(partial):
            return partial
    return None


def is_over_message_size(error: grpc.RpcError) -> bool:
    """Whether a failed call was refused for a message over a size limit (grpc's 'larger than
    max', or the server's own --max-message-bytes refusal), not, say, for overload."""
    failure: Any = error
    text = failure.details() or ""
    return "larger than max" in text or "--max-message-bytes" in text


def rejected_places(
    response: pb.UpsertDocumentsResponse, args: argparse.Namespace
) -> dict[int, str]:
    """The corpus FILE:LINE of the rejections `print_summary` shows."""
    shown = {r.position: r.id for r in response.rejected[:SHOWN_REJECTIONS]}
    return corpus_places(args.corpus, shown, skip_bad_lines=args.skip_bad_lines)


def print_partial(
    partial: pb.UpsertDocumentsResponse, stats: ReadStats, args: argparse.Namespace
) -> None:
    """What a failed stream's applied messages did, as the server reported it (nothing when
    none was applied: the failure note says so)."""
    if not partial.applied_messages and not partial.rejected_count:
        return
    count = partial.applied_messages
    print(f"applied {count} message{'' if count == 1 else 's'} before the failure:")
    print_summary(partial, stats, rejected_places(partial, args))


@dataclass(slots=True)
class Sent:
    """What an ingest handed to its stream (gRPC takes a message before it knows whether the
    server is there), for the message of a failed call."""

    documents: int = 0
    messages: int = 0
    largest_bytes: int = 0
    largest: str = ""  # FILE:LINE and id of the largest document read

    def failure_note(self, applied: int | None = None, *, ended_by: str = "the failure") -> str:
        """What a failed call committed: its first ``applied`` messages when the server said
        so, else what it may have committed (before ``ended_by``)."""
        if applied is not None:
            return (
                f"{self.documents} documents in {self.messages} messages were handed to the "
                f"stream; the server applied (committed) the first {applied} of them and not "
                "the rest; re-running the same ingest is safe (an upsert replaces its id's "
                "document)"
            )
        if not self.messages:
            return "no message was handed to the stream, so nothing was committed"
        return (
            f"{self.documents} documents in {self.messages} messages were handed to the stream "
            f"before {ended_by}, and any of those messages (each one commit) may have been "
            "committed; re-running the same ingest is safe (an upsert replaces its id's document)"
        )


def run_ingest(args: argparse.Namespace) -> int:
    """Stream ``args.corpus`` to ``args.server``; print the summary.

    Exit code 1 when the call fails (saying what may have been committed) or the server
    rejected a document; 130 when interrupted (Ctrl-C), saying the same. A malformed corpus
    line ends the stream (the server commits what came before it), prints the summary and
    raises `HybridSearchError` naming the line (exit code 2).
    """
    if args.batch_size <= 0:
        raise HybridSearchError(f"--batch-size must be positive (got {args.batch_size})")
    if args.max_batch_bytes <= 0:
        raise HybridSearchError(f"--max-batch-bytes must be positive (got {args.max_batch_bytes})")
    total = count_lines(args.corpus)
    stats = ReadStats()
    read_errors: list[HybridSearchError] = []

    def docs() -> Iterator[Document]:
        # gRPC consumes this on its own thread. A corpus error ends the stream cleanly (an
        # exception here would cancel the call, and with it batches the server had not yet
        # committed): the server commits what it received and answers, then we report it.
        try:
            yield from read_corpus(args.corpus, skip_bad_lines=args.skip_bad_lines, stats=stats)
        except HybridSearchError as exc:
            read_errors.append(exc)

    sent = Sent()

    def on_document(doc: Document, size: int) -> None:
        where = f"{stats.file}:{stats.line}"
        if size > sent.largest_bytes:
            sent.largest_bytes, sent.largest = size, f"{where} (id {echo(doc.id)})"
        if size > args.max_batch_bytes:
            print(
                f"note: {where}: document {echo(doc.id)} is {size} bytes, more than "
                f"--max-batch-bytes ({args.max_batch_bytes}); it is sent alone",
                file=sys.stderr,
            )

    def counted(
        requests: Iterator[pb.UpsertDocumentsRequest],
    ) -> Iterator[pb.UpsertDocumentsRequest]:
        for request in requests:
            sent.messages += 1
            sent.documents += len(request.documents)
            yield request

    import grpc  # noqa: PLC0415 (kept off the import path of `serve`, which forks first)
    from tqdm import tqdm  # noqa: PLC0415

    from hybridsearch.v1 import index_pb2_grpc  # noqa: PLC0415

    with (
        open_channel(args) as channel,
        tqdm(total=total, desc="sending", unit="doc", **bar_options(args.no_progress)) as bar,
    ):
        stub = index_pb2_grpc.IndexServiceStub(channel)
        requests = upsert_requests(
            docs(),
            args.batch_size,
            on_batch=bar.update,
            max_batch_bytes=args.max_batch_bytes,
            collection=args.collection,
            on_document=on_document,
        )
        try:
            response = stub.UpsertDocuments(
                counted(requests), timeout=args.timeout, metadata=call_metadata(args)
            )
        except grpc.RpcError as error:
            report_rpc_error(error, args)
            if read_errors:
                print(f"error: {read_errors[0]}", file=sys.stderr)
            partial = partial_response(error)
            if partial is not None:
                print_partial(partial, stats, args)
            if is_over_message_size(error) and sent.largest:
                print(
                    f"  the largest document read is {sent.largest_bytes} bytes: {sent.largest}",
                    file=sys.stderr,
                )
            applied = None if partial is None else partial.applied_messages
            print(f"  {sent.failure_note(applied)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # Ctrl-C: the call is cancelled as the channel closes
            note = sent.failure_note(ended_by="the interrupt")
            print(f"interrupted: {note}", file=sys.stderr)
            raise
    print_summary(response, stats, rejected_places(response, args))
    if read_errors:
        raise HybridSearchError(
            f"{read_errors[0]}; the stream stopped there: the documents before it were sent, "
            f"and {response.accepted_count} accepted"
        )
    if response.rejected_count:
        print(
            f"error: the server rejected {response.rejected_count} documents (listed above)",
            file=sys.stderr,
        )
        return 1
    return 0


def add_ingest_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ingest`` (with the same connection flags as ``search``: TLS, token)."""
    p = commands.add_parser("ingest", help="stream a corpus into a running server")
    add_channel_arguments(p)
    p.add_argument(
        "--corpus",
        type=path_arg,
        required=True,
        help="BEIR corpus.jsonl or Pyserini JsonCollection",
    )
    p.add_argument(
        "--batch-size", type=int, default=64, help="documents per message (one commit each)"
    )
    p.add_argument(
        "--max-batch-bytes",
        type=int,
        default=DEFAULT_MAX_BATCH_BYTES,
        help="most bytes of documents per message; keep it under the server's "
        f"--max-message-bytes (default {DEFAULT_MAX_BATCH_BYTES})",
    )
    p.add_argument(
        "--collection", default="", help="collection or alias to write (default: the default)"
    )
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count malformed lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--timeout", type=timeout_seconds, help="deadline of the whole upload, in seconds"
    )
    p.set_defaults(func=run_ingest)
