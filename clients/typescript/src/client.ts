// Typed wrapper over the ts-proto/grpc-js SearchService and IndexService clients: default and
// per-call deadlines, TLS, bearer token, errors as HybridSearchError.
import { type ChannelOptions, credentials, type ChannelCredentials, Metadata } from "@grpc/grpc-js";
import type { Writable } from "node:stream";
import {
  type BatchSearchResponse,
  type DeepPartial,
  SearchRequest,
  type SearchResponse,
  SearchServiceClient,
  SearchStreamRequest,
  type SearchStreamResponse,
} from "./gen/hybridsearch/v1/search.js";
import {
  DeleteDocumentsRequest,
  type DeleteDocumentsResponse,
  Document,
  GetDocumentRequest,
  type GetDocumentResponse,
  GetIndexStatsRequest,
  type GetIndexStatsResponse,
  IndexServiceClient,
  UpsertDocumentsRequest,
  type UpsertDocumentsResponse,
} from "./gen/hybridsearch/v1/index.js";
import { fromStreamError, HybridSearchError, toHybridSearchError } from "./errors.js";

export const DEFAULT_TIMEOUT_MS = 10_000;

export interface TlsOptions {
  /** PEM root certificates; omitted means the system roots. */
  rootCerts?: Buffer;
  /** PEM client key and certificate chain, for mutual TLS. */
  privateKey?: Buffer;
  certChain?: Buffer;
}

export interface ClientOptions {
  /** Default deadline of every call, in milliseconds (default 10 s). */
  timeoutMs?: number;
  /** TLS settings; omitted means a plaintext connection. */
  tls?: TlsOptions;
  /** Sent as `authorization: Bearer <token>` on every call. */
  bearerToken?: string;
  /** Extra grpc-js channel options. */
  channelOptions?: ChannelOptions;
}

export interface CallOptions {
  /** Deadline of this call in milliseconds; overrides the client default. */
  timeoutMs?: number;
}

/** A query text (server defaults for the rest) or a (partial) SearchRequest. */
export type QueryLike = string | DeepPartial<SearchRequest>;

/** One answer on a stream: exactly one of `response` and `error` is set. */
export interface StreamResult {
  requestId: string;
  response?: SearchResponse;
  error?: HybridSearchError;
}

export function toSearchRequest(query: QueryLike): SearchRequest {
  return SearchRequest.fromPartial(typeof query === "string" ? { query } : query);
}

/** A document to upsert: `{ id, title?, text?, metadata? }` (metadata is a JSON object). */
export type DocumentLike = Partial<Document> & { id: string };

/** A ready batch, sent as one UpsertDocumentsRequest of its own. */
export interface DocumentBatch {
  documents: DocumentLike[];
}

export const DEFAULT_BATCH_SIZE = 100;
/** Serialized bytes at which a batch is cut early (the server accepts 16 MiB messages). */
export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;

export interface UpsertOptions extends CallOptions {
  /** Documents per UpsertDocumentsRequest, i.e. per atomic commit (default 100). */
  batchSize?: number;
  /** Cut a batch early past this many serialized bytes (default 4 MiB); a larger document
   * travels alone. */
  maxBatchBytes?: number;
}

/** Cuts a document stream into UpsertDocumentsRequest messages by count and size. */
export class UpsertBatcher {
  private pending: Document[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly batchSize = DEFAULT_BATCH_SIZE,
    private readonly maxBatchBytes = DEFAULT_MAX_BATCH_BYTES,
  ) {
    if (!(batchSize >= 1) || !(maxBatchBytes >= 1)) {
      throw new RangeError(`batchSize and maxBatchBytes must be at least 1 (got ${batchSize}, ${maxBatchBytes})`);
    }
  }

  /** The requests completed by `item` (none, one or two). */
  add(item: DocumentLike | DocumentBatch): UpsertDocumentsRequest[] {
    if (isBatch(item)) return [...this.flush(), UpsertDocumentsRequest.fromPartial(item)];
    const doc = Document.fromPartial(item);
    const size = Document.encode(doc).finish().length + 8; // tag and length prefix, generously
    const out: UpsertDocumentsRequest[] = [];
    if (this.pending.length > 0 && this.pendingBytes + size > this.maxBatchBytes) out.push(...this.flush());
    this.pending.push(doc);
    this.pendingBytes += size;
    if (this.pending.length >= this.batchSize) out.push(...this.flush());
    return out;
  }

  /** The pending documents as one request, if any. */
  flush(): UpsertDocumentsRequest[] {
    if (this.pending.length === 0) return [];
    const request = UpsertDocumentsRequest.fromPartial({ documents: this.pending });
    this.pending = [];
    this.pendingBytes = 0;
    return [request];
  }
}

function isBatch(item: DocumentLike | DocumentBatch): item is DocumentBatch {
  return Array.isArray((item as Partial<DocumentBatch>).documents);
}

/** Resolves when `stream` can take more writes or has ended (never rejects). */
function writable(stream: Writable & NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      for (const event of ["drain", "close", "status", "error"]) stream.off(event, done);
      resolve();
    };
    for (const event of ["drain", "close", "status", "error"]) stream.once(event, done);
  });
}

/**
 * Writes every item of `source` (sync or async, consumed lazily) to `call` with backpressure,
 * then ends it; stops early once `stopped()` says the call is over. A source that throws
 * cancels the call; the error is handed to `onSourceError`. Never rejects.
 */
async function pump<T, M>(
  source: Iterable<T> | AsyncIterable<T>,
  toMessages: (item: T) => M[],
  tail: () => M[],
  call: Writable & NodeJS.EventEmitter & { cancel(): void },
  stopped: () => boolean,
  onSourceError: (error: unknown) => void,
): Promise<void> {
  try {
    for await (const item of source) {
      for (const message of toMessages(item)) {
        if (stopped()) return;
        if (!call.write(message)) await writable(call);
      }
    }
    for (const message of tail()) {
      if (stopped()) return;
      if (!call.write(message)) await writable(call);
    }
    if (!stopped()) call.end();
  } catch (error) {
    onSourceError(error);
    call.cancel();
  }
}

export class HybridSearchClient {
  readonly stub: SearchServiceClient;
  /** The generated IndexService client (on the same channel). */
  readonly indexStub: IndexServiceClient;
  private readonly timeoutMs: number;
  private readonly bearerToken?: string;

  constructor(address: string, options: ClientOptions = {}) {
    const creds: ChannelCredentials = options.tls
      ? credentials.createSsl(options.tls.rootCerts ?? null, options.tls.privateKey ?? null, options.tls.certChain ?? null)
      : credentials.createInsecure();
    this.stub = new SearchServiceClient(address, creds, options.channelOptions);
    this.indexStub = new IndexServiceClient(address, creds, { channelOverride: this.stub.getChannel() });
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.bearerToken = options.bearerToken;
  }

  private metadata(): Metadata {
    const metadata = new Metadata();
    if (this.bearerToken !== undefined) metadata.set("authorization", `Bearer ${this.bearerToken}`);
    return metadata;
  }

  private deadline(options?: CallOptions): Date {
    return new Date(Date.now() + (options?.timeoutMs ?? this.timeoutMs));
  }

  /** Runs one query. */
  search(query: QueryLike, options?: CallOptions): Promise<SearchResponse> {
    return new Promise((resolve, reject) => {
      this.stub.search(toSearchRequest(query), this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res),
      );
    });
  }

  /** Runs several queries in one call; responses come back in request order. */
  batchSearch(queries: QueryLike[], options?: CallOptions): Promise<SearchResponse[]> {
    const request = { requests: queries.map(toSearchRequest) };
    return new Promise((resolve, reject) => {
      this.stub.batchSearch(request, this.metadata(), { deadline: this.deadline(options) }, (err, res: BatchSearchResponse) =>
        err ? reject(toHybridSearchError(err)) : resolve(res.responses),
      );
    });
  }

  /**
   * Streams `requests` (sync or async iterable, consumed lazily with backpressure) while
   * yielding answers as they arrive (any order), so a request may depend on an earlier answer.
   * A per-request failure is `StreamResult.error`; a failed stream (deadline, cancellation,
   * shutdown) throws HybridSearchError from the iterator after the answers that did arrive.
   * An error thrown by `requests` cancels the stream and is rethrown unchanged. Leaving the
   * loop early cancels the call.
   */
  async *searchStream(
    requests: Iterable<DeepPartial<SearchStreamRequest>> | AsyncIterable<DeepPartial<SearchStreamRequest>>,
    options?: CallOptions,
  ): AsyncGenerator<StreamResult> {
    const call = this.stub.searchStream(this.metadata(), { deadline: this.deadline(options) });
    let finished = false;
    let sourceError: { error: unknown } | undefined;
    void pump(
      requests,
      (request) => [SearchStreamRequest.fromPartial(request)],
      () => [],
      call,
      () => finished,
      (error) => (sourceError = { error }),
    );
    try {
      for await (const message of call as AsyncIterable<SearchStreamResponse>) {
        yield message.error
          ? { requestId: message.requestId, error: fromStreamError(message.error) }
          : { requestId: message.requestId, response: message.response };
      }
    } catch (err) {
      throw sourceError ? sourceError.error : toHybridSearchError(err);
    } finally {
      finished = true;
      call.cancel();
    }
    if (sourceError) throw sourceError.error;
  }

  /**
   * Streams documents (sync or async iterable, consumed lazily with backpressure) to
   * UpsertDocuments in batches of `batchSize` documents / `maxBatchBytes` bytes; a
   * `{ documents: [...] }` item is sent as a batch of its own. Each batch is one atomic commit;
   * the response sums them (accepted, replaced and rejected counts, each rejection with
   * position, id and reason, and the generation). After a failure the batches sent before stay
   * committed. An error thrown by `documents` cancels the call and is rethrown unchanged.
   */
  upsertDocuments(
    documents: Iterable<DocumentLike | DocumentBatch> | AsyncIterable<DocumentLike | DocumentBatch>,
    options: UpsertOptions = {},
  ): Promise<UpsertDocumentsResponse> {
    let batcher: UpsertBatcher;
    try {
      batcher = new UpsertBatcher(options.batchSize, options.maxBatchBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      let finished = false;
      let sourceError: { error: unknown } | undefined;
      const call = this.indexStub.upsertDocuments(this.metadata(), { deadline: this.deadline(options) }, (err, res) => {
        finished = true;
        if (sourceError) reject(sourceError.error);
        else if (err) reject(toHybridSearchError(err));
        else resolve(res);
      });
      void pump(
        documents,
        (item) => batcher.add(item),
        () => batcher.flush(),
        call,
        () => finished,
        (error) => (sourceError = { error }),
      );
    });
  }

  /** Deletes documents by id in one commit: `deletedCount`, `notFoundIds`, `generation`. */
  deleteDocuments(ids: string[], options?: CallOptions): Promise<DeleteDocumentsResponse> {
    return new Promise((resolve, reject) => {
      this.indexStub.deleteDocuments(DeleteDocumentsRequest.fromPartial({ ids }), this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res),
      );
    });
  }

  /** One document's stored fields; rejects with HybridSearchError NOT_FOUND when absent. */
  getDocument(id: string, options?: CallOptions): Promise<Document> {
    return new Promise((resolve, reject) => {
      this.indexStub.getDocument(GetDocumentRequest.fromPartial({ id }), this.metadata(), { deadline: this.deadline(options) }, (err, res: GetDocumentResponse) =>
        err ? reject(toHybridSearchError(err)) : resolve(res.document ?? Document.fromPartial({})),
      );
    });
  }

  /** Statistics of the served index as of its last commit. */
  getIndexStats(options?: CallOptions): Promise<GetIndexStatsResponse> {
    return new Promise((resolve, reject) => {
      this.indexStub.getIndexStats(GetIndexStatsRequest.fromPartial({}), this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res),
      );
    });
  }

  close(): void {
    this.indexStub.close();
    this.stub.close();
  }
}
