// Typed wrapper over the ts-proto/grpc-js SearchService, IndexService and CollectionService
// clients: default and per-call deadlines, TLS, bearer token, errors as HybridSearchError.
import { type ChannelOptions, credentials, type ChannelCredentials, Metadata } from "@grpc/grpc-js";
import type { Writable } from "node:stream";
import {
  type BatchSearchResponse,
  type DeepPartial,
  HighlightOptions,
  SearchRequest,
  type SearchResponse,
  SearchServiceClient,
  SearchStreamRequest,
  type SearchStreamResponse,
} from "./gen/hybridsearch/v1/search.js";
import {
  CompactRequest,
  type CompactResponse,
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
import {
  type AliasAction,
  type CollectionInfo,
  CollectionServiceClient,
  CreateCollectionRequest,
  DeleteCollectionRequest,
  DenseIndexKind,
  GetCollectionRequest,
  ListCollectionsRequest,
  MetadataType,
  UpdateAliasesRequest,
} from "./gen/hybridsearch/v1/collection.js";
import { fromStreamError, HybridSearchError, toHybridSearchError } from "./errors.js";
import { type FilterLike, toFilter } from "./filters.js";
import { instantRfc3339 } from "./instant.js";

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
  /** Largest reply accepted, in bytes (default 16 MiB, the server's `--max-message-bytes`
   * default; grpc-js's own is 4 MiB). Raise it for a server with a larger limit. */
  maxReceiveMessageBytes?: number;
  /** Extra grpc-js channel options (a `grpc.max_receive_message_length` here wins). */
  channelOptions?: ChannelOptions;
}

/** The default `maxReceiveMessageBytes`: 16 MiB. */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface CallOptions {
  /** Deadline of this call in milliseconds; overrides the client default. */
  timeoutMs?: number;
}

/** A query text (server defaults for the rest) or a (partial) SearchRequest. */
export type QueryLike = string | DeepPartial<SearchRequest>;

/** Highlight settings: `true`, or `{ maxChars }` (20 to 2000 characters; default 200). */
export type HighlightLike = boolean | { maxChars?: number };

/**
 * Request settings a search call applies to each of its queries, unless the query sets the
 * field itself (a query's own `collection`, `filter`, `offset` or `highlight` wins).
 */
export interface SearchOptions extends CallOptions {
  /** The collection to search: a name or an alias; empty or omitted: the server's default. */
  collection?: string;
  /** Only documents matching it are ranked: a `filters` condition or a Filter message. */
  filter?: FilterLike;
  /** Hits to skip before the first returned (pagination); ranks stay absolute. */
  offset?: number;
  /** Snippets of the title and text with the matched terms located, on every hit. */
  highlight?: HighlightLike;
}

/** Options of the IndexService calls. */
export interface IndexOptions extends CallOptions {
  /** The collection: a name or an alias; empty or omitted: the server's default. */
  collection?: string;
}

/** A metadata field type by name, or the generated enum. */
export type FieldType = "keyword" | "integer" | "float" | "boolean" | "datetime" | MetadataType;

/** One filterable metadata field of a collection. */
export interface SchemaField {
  /** Its key in the documents' `metadata`. */
  name: string;
  type: FieldType;
  /** Whether the value may be a list of values of the type. */
  multiValued?: boolean;
}

/** How a collection searches its vectors, by name or as the generated enum. */
export type DenseIndex = "exact" | "hnsw" | DenseIndexKind;

export interface CreateCollectionOptions extends CallOptions {
  /** Its filterable metadata fields; omitted: none. */
  fields?: SchemaField[];
  /** The encoder: `"default"` (the server's model), another model directory the server knows,
   * or null / omitted for a BM25-only collection. */
  model?: string | null;
  /** How vectors are searched (ignored for BM25-only); omitted: exact. */
  denseIndex?: DenseIndex;
  /** N in [1, 1024]: a sharded collection, its documents spread over N shards by a hash of
   * their ids (the count is fixed for its life). Omitted or 0: one index directory. */
  shards?: number;
}

/** One step of `updateAliases`: `{ add: { alias, collection } }` or `{ remove: { alias } }`. */
export type AliasActionLike = DeepPartial<AliasAction>;

const FIELD_TYPES: Record<string, MetadataType> = {
  keyword: MetadataType.METADATA_TYPE_KEYWORD,
  integer: MetadataType.METADATA_TYPE_INTEGER,
  float: MetadataType.METADATA_TYPE_FLOAT,
  boolean: MetadataType.METADATA_TYPE_BOOLEAN,
  datetime: MetadataType.METADATA_TYPE_DATETIME,
};
const DENSE_INDEX: Record<string, DenseIndexKind> = {
  exact: DenseIndexKind.DENSE_INDEX_KIND_EXACT,
  hnsw: DenseIndexKind.DENSE_INDEX_KIND_HNSW,
};

function enumValue<T>(table: Record<string, T>, value: string | T, what: string): T {
  if (typeof value !== "string") return value;
  const found = table[value];
  if (found === undefined) throw new RangeError(`unknown ${what} "${value}" (one of ${Object.keys(table).join(", ")})`);
  return found;
}

/** The CreateCollectionRequest of `createCollection`. */
export function toCreateCollectionRequest(name: string, options: CreateCollectionOptions = {}): CreateCollectionRequest {
  return CreateCollectionRequest.fromPartial({
    name,
    schema: {
      fields: (options.fields ?? []).map((field) => ({
        name: field.name,
        type: enumValue(FIELD_TYPES, field.type, "metadata field type"),
        multiValued: field.multiValued ?? false,
      })),
    },
    model: options.model ?? "",
    denseIndex:
      options.denseIndex === undefined ? DenseIndexKind.DENSE_INDEX_KIND_UNSPECIFIED : enumValue(DENSE_INDEX, options.denseIndex, "dense index kind"),
    shards: shardCount(options.shards),
  });
}

/** The `shards` option as the uint32 field: a negative or fractional count would not survive
 * the wire as itself, so it throws here instead. The server checks the upper bound. */
function shardCount(value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`shards must be a whole number >= 0 (got ${value})`);
  return value;
}

/** A collection's schema as `SchemaField`s (types by name), e.g. to compare with what was sent. */
export function schemaFields(info: CollectionInfo): SchemaField[] {
  const names = new Map(Object.entries(FIELD_TYPES).map(([name, value]) => [value, name as FieldType]));
  return (info.schema?.fields ?? []).map((field) => ({
    name: field.name,
    type: names.get(field.type) ?? field.type,
    multiValued: field.multiValued,
  }));
}

/**
 * One answer on a stream: exactly one of `response` and `error` is set. `partial` is true on
 * the early BM25-only answer of a `progressive` request (hybrid query); the final answer for
 * the same `requestId` follows with `partial` false.
 */
export interface StreamResult {
  requestId: string;
  response?: SearchResponse;
  error?: HybridSearchError;
  partial: boolean;
}

/** The SearchRequest of `query`, with the `options` the query does not set itself. */
export function toSearchRequest(query: QueryLike, options: SearchOptions = {}): SearchRequest {
  const request = SearchRequest.fromPartial(typeof query === "string" ? { query } : query);
  if (!request.collection && options.collection) request.collection = options.collection;
  if (request.filter === undefined && options.filter !== undefined) request.filter = toFilter(options.filter);
  if (!request.offset && options.offset) request.offset = options.offset;
  if (request.highlight === undefined && options.highlight) {
    const maxChars = options.highlight === true ? undefined : options.highlight.maxChars;
    request.highlight = HighlightOptions.fromPartial({ enabled: true, maxChars });
  }
  return request;
}

/** A document to upsert: `{ id, title?, text?, metadata? }` (metadata is a JSON object). */
export type DocumentLike = Partial<Document> & { id: string };

/** A ready batch, sent as one UpsertDocumentsRequest of its own. */
export interface DocumentBatch {
  documents: DocumentLike[];
  /** Its collection; omitted: the `collection` of the upsert call. */
  collection?: string;
}

export const DEFAULT_BATCH_SIZE = 100;
/** Serialized bytes at which a batch is cut early (the server accepts 16 MiB messages). */
export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;

export interface UpsertOptions extends IndexOptions {
  /** Documents per UpsertDocumentsRequest, i.e. per atomic commit (default 100). */
  batchSize?: number;
  /** Cut a batch early past this many serialized bytes (default 4 MiB); a larger document
   * travels alone. */
  maxBatchBytes?: number;
}

/**
 * `metadata` as JSON for protobuf's Struct: a copy in which every Date (at any depth, in
 * nested objects and arrays too) is its RFC 3339 text in UTC, e.g. "2020-01-31T12:00:00Z" (an
 * invalid Date is a RangeError). Throws a TypeError naming the document and field when it holds
 * another value that is not JSON (a Map, Set, class instance, bigint, function...): Struct
 * would turn an object into `{}` without a word.
 */
export function jsonMetadata(id: string, metadata: unknown): { [key: string]: unknown } | undefined {
  if (metadata === undefined || metadata === null) return undefined;
  const visit = (value: unknown, path: string): unknown => {
    if (value === null || value === undefined) return value;
    const kind = typeof value;
    if (kind === "string" || kind === "number" || kind === "boolean") return value;
    if (value instanceof Date) return instantRfc3339(value, `document "${id}": metadata field "${path}"`);
    if (Array.isArray(value)) return value.map((item, i) => visit(item, `${path}[${i}]`));
    if (kind === "object") {
      const proto = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null) return visitObject(value as Record<string, unknown>, `${path}.`);
    }
    const what = kind === "object" ? ((value as object).constructor?.name ?? "object") : kind;
    throw new TypeError(
      `document "${id}": metadata field "${path}": a ${what} is not a JSON value (string, number, boolean, null, array, plain object) or a Date`,
    );
  };
  const visitObject = (object: Record<string, unknown>, prefix: string): { [key: string]: unknown } =>
    Object.fromEntries(Object.entries(object).map(([key, item]) => [key, visit(item, `${prefix}${key}`)]));
  if (typeof metadata !== "object" || Array.isArray(metadata) || ![Object.prototype, null].includes(Object.getPrototypeOf(metadata))) {
    throw new TypeError(`document "${id}": metadata must be a plain object`);
  }
  return visitObject(metadata as Record<string, unknown>, "");
}

/** `doc` with its metadata made JSON by jsonMetadata. */
function withJsonMetadata(doc: DocumentLike): DocumentLike {
  if (doc.metadata === undefined || doc.metadata === null) return doc;
  return { ...doc, metadata: jsonMetadata(doc.id, doc.metadata) };
}

/** Cuts a document stream into UpsertDocumentsRequest messages by count and size. */
export class UpsertBatcher {
  private pending: Document[] = [];
  private pendingBytes = 0;

  /** Every request names `collection` (a ready batch that names none gets it too). */
  constructor(
    private readonly batchSize = DEFAULT_BATCH_SIZE,
    private readonly maxBatchBytes = DEFAULT_MAX_BATCH_BYTES,
    private readonly collection = "",
  ) {
    if (!(batchSize >= 1) || !(maxBatchBytes >= 1)) {
      throw new RangeError(`batchSize and maxBatchBytes must be at least 1 (got ${batchSize}, ${maxBatchBytes})`);
    }
  }

  /** The requests completed by `item` (none, one or two). */
  add(item: DocumentLike | DocumentBatch): UpsertDocumentsRequest[] {
    if (isBatch(item)) {
      const request = UpsertDocumentsRequest.fromPartial({ ...item, documents: item.documents.map(withJsonMetadata) });
      if (!request.collection) request.collection = this.collection;
      return [...this.flush(), request];
    }
    const doc = Document.fromPartial(withJsonMetadata(item));
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
    const request = UpsertDocumentsRequest.fromPartial({ documents: this.pending, collection: this.collection });
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
  /** The generated CollectionService client (on the same channel). */
  readonly collectionStub: CollectionServiceClient;
  private readonly timeoutMs: number;
  private readonly bearerToken?: string;

  constructor(address: string, options: ClientOptions = {}) {
    const creds: ChannelCredentials = options.tls
      ? credentials.createSsl(options.tls.rootCerts ?? null, options.tls.privateKey ?? null, options.tls.certChain ?? null)
      : credentials.createInsecure();
    this.stub = new SearchServiceClient(address, creds, {
      "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
      ...options.channelOptions,
    });
    this.indexStub = new IndexServiceClient(address, creds, { channelOverride: this.stub.getChannel() });
    this.collectionStub = new CollectionServiceClient(address, creds, { channelOverride: this.stub.getChannel() });
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

  /**
   * Runs one query: a text or a (partial) SearchRequest. `options.collection`, `filter`,
   * `offset` and `highlight` fill in what the query does not set itself.
   */
  search(query: QueryLike, options?: SearchOptions): Promise<SearchResponse> {
    let request: SearchRequest;
    try {
      request = toSearchRequest(query, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.stub.search(request, this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res),
      );
    });
  }

  /** Runs several queries in one call; responses come back in request order. `options`
   * (collection, filter, offset, highlight) apply to every query that does not set its own. */
  batchSearch(queries: QueryLike[], options?: SearchOptions): Promise<SearchResponse[]> {
    let request: { requests: SearchRequest[] };
    try {
      request = { requests: queries.map((query) => toSearchRequest(query, options)) };
    } catch (err) {
      return Promise.reject(err);
    }
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
   * loop early cancels the call. `options` (collection, filter, offset, highlight) apply to
   * every request's `search` that does not set its own.
   */
  async *searchStream(
    requests: Iterable<DeepPartial<SearchStreamRequest>> | AsyncIterable<DeepPartial<SearchStreamRequest>>,
    options?: SearchOptions,
  ): AsyncGenerator<StreamResult> {
    const call = this.stub.searchStream(this.metadata(), { deadline: this.deadline(options) });
    let finished = false;
    let sourceError: { error: unknown } | undefined;
    void pump(
      requests,
      (request) => {
        const message = SearchStreamRequest.fromPartial(request);
        if (message.search) message.search = toSearchRequest(message.search, options);
        return [message];
      },
      () => [],
      call,
      () => finished,
      (error) => (sourceError = { error }),
    );
    try {
      for await (const message of call as AsyncIterable<SearchStreamResponse>) {
        yield message.error
          ? { requestId: message.requestId, error: fromStreamError(message.error), partial: message.partial }
          : { requestId: message.requestId, response: message.response, partial: message.partial };
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
   * `options.collection` names the collection or alias written (omitted: the default one).
   */
  upsertDocuments(
    documents: Iterable<DocumentLike | DocumentBatch> | AsyncIterable<DocumentLike | DocumentBatch>,
    options: UpsertOptions = {},
  ): Promise<UpsertDocumentsResponse> {
    let batcher: UpsertBatcher;
    try {
      batcher = new UpsertBatcher(options.batchSize, options.maxBatchBytes, options.collection);
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
  deleteDocuments(ids: string[], options?: IndexOptions): Promise<DeleteDocumentsResponse> {
    const request = DeleteDocumentsRequest.fromPartial({ ids, collection: options?.collection });
    return new Promise((resolve, reject) => {
      this.indexStub.deleteDocuments(request, this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res),
      );
    });
  }

  /** One document's stored fields; rejects with HybridSearchError NOT_FOUND when absent. */
  getDocument(id: string, options?: IndexOptions): Promise<Document> {
    const request = GetDocumentRequest.fromPartial({ id, collection: options?.collection });
    return new Promise((resolve, reject) => {
      this.indexStub.getDocument(request, this.metadata(), { deadline: this.deadline(options) }, (err, res: GetDocumentResponse) =>
        err ? reject(toHybridSearchError(err)) : resolve(res.document ?? Document.fromPartial({})),
      );
    });
  }

  /** Statistics of the served index as of its last commit. */
  getIndexStats(options?: IndexOptions): Promise<GetIndexStatsResponse> {
    const request = GetIndexStatsRequest.fromPartial({ collection: options?.collection });
    return new Promise((resolve, reject) => {
      this.indexStub.getIndexStats(request, this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res),
      );
    });
  }

  /** Rewrites the collection's index without its dead rows now, as one atomic commit:
   * generation, rows removed, sizes before and after. */
  compact(options?: IndexOptions): Promise<CompactResponse> {
    const request = CompactRequest.fromPartial({ collection: options?.collection });
    return new Promise((resolve, reject) => {
      this.indexStub.compact(request, this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res),
      );
    });
  }

  // CollectionService

  /**
   * Creates an empty collection with filterable `fields`, an encoder (`model: "default"` for
   * the server's model; omitted or null: BM25-only), a `denseIndex` kind and a number of
   * `shards` (omitted or 0: one index directory). Rejects with
   * ALREADY_EXISTS when the name is taken, INVALID_ARGUMENT (field violations) when bad.
   */
  createCollection(name: string, options: CreateCollectionOptions = {}): Promise<CollectionInfo> {
    let request: CreateCollectionRequest;
    try {
      request = toCreateCollectionRequest(name, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.collectionStub.createCollection(request, this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res.collection!),
      );
    });
  }

  /** Every collection of the server, in name order. */
  listCollections(options?: CallOptions): Promise<CollectionInfo[]> {
    return new Promise((resolve, reject) => {
      this.collectionStub.listCollections(ListCollectionsRequest.fromPartial({}), this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res.collections),
      );
    });
  }

  /** One collection by name or alias (empty: the default one); its own name is in the info.
   * Rejects with NOT_FOUND when unknown. */
  getCollection(name: string, options?: CallOptions): Promise<CollectionInfo> {
    return new Promise((resolve, reject) => {
      this.collectionStub.getCollection(GetCollectionRequest.fromPartial({ name }), this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res.collection!),
      );
    });
  }

  /** Deletes a collection by its own name (not an alias) with its aliases; resolves to the
   * aliases removed. NOT_FOUND when unknown; FAILED_PRECONDITION for the default one. */
  deleteCollection(name: string, options?: CallOptions): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.collectionStub.deleteCollection(DeleteCollectionRequest.fromPartial({ name }), this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res.removedAliases),
      );
    });
  }

  /**
   * Applies alias actions (`{ add: { alias, collection } }`, `{ remove: { alias } }`) in order
   * and atomically: every search sees all of them or none, and one invalid action applies none.
   * Resolves to every alias of the server afterwards, alias -> collection.
   */
  updateAliases(actions: AliasActionLike[], options?: CallOptions): Promise<Record<string, string>> {
    const request = UpdateAliasesRequest.fromPartial({ actions });
    return new Promise((resolve, reject) => {
      this.collectionStub.updateAliases(request, this.metadata(), { deadline: this.deadline(options) }, (err, res) =>
        err ? reject(toHybridSearchError(err)) : resolve(res.aliases),
      );
    });
  }

  /** Points `alias` at `collection` (creating or moving it): a one-action `updateAliases`. */
  setAlias(alias: string, collection: string, options?: CallOptions): Promise<Record<string, string>> {
    return this.updateAliases([{ add: { alias, collection } }], options);
  }

  /** Deletes `alias`: a one-action `updateAliases`. */
  removeAlias(alias: string, options?: CallOptions): Promise<Record<string, string>> {
    return this.updateAliases([{ remove: { alias } }], options);
  }

  close(): void {
    this.collectionStub.close();
    this.indexStub.close();
    this.stub.close();
  }
}
