export {
  HybridSearchClient,
  DEFAULT_BATCH_SIZE,
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_TIMEOUT_MS,
  UpsertBatcher,
  toSearchRequest,
} from "./client.js";
export type {
  CallOptions,
  ClientOptions,
  DocumentBatch,
  DocumentLike,
  QueryLike,
  StreamResult,
  TlsOptions,
  UpsertOptions,
} from "./client.js";
export { HybridSearchError, fieldViolationsFromStatus, toHybridSearchError } from "./errors.js";
export type { FieldViolation } from "./errors.js";
export * from "./gen/hybridsearch/v1/search.js";
// Named, not `export *`: both generated modules define DeepPartial, MessageFns and protobufFileName.
export {
  DeleteDocumentsRequest,
  DeleteDocumentsResponse,
  Document,
  GetDocumentRequest,
  GetDocumentResponse,
  GetIndexStatsRequest,
  GetIndexStatsResponse,
  IndexServiceClient,
  IndexServiceService,
  RejectedDocument,
  UpsertDocumentsRequest,
  UpsertDocumentsResponse,
} from "./gen/hybridsearch/v1/index.js";
export type { IndexServiceServer } from "./gen/hybridsearch/v1/index.js";
