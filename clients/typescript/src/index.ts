export {
  HybridSearchClient,
  DEFAULT_BATCH_SIZE,
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  DEFAULT_TIMEOUT_MS,
  UpsertBatcher,
  schemaFields,
  toCreateCollectionRequest,
  toSearchRequest,
} from "./client.js";
export type {
  AliasActionLike,
  CallOptions,
  ClientOptions,
  CreateCollectionOptions,
  DenseIndex,
  DocumentBatch,
  DocumentLike,
  FieldType,
  HighlightLike,
  IndexOptions,
  QueryLike,
  SchemaField,
  SearchOptions,
  StreamResult,
  TlsOptions,
  UpsertOptions,
} from "./client.js";
export * as filters from "./filters.js";
export type { Bound, FilterLike, MatchValueLike, RangeBounds, WhereClauses } from "./filters.js";
export { HybridSearchError, fieldViolationsFromStatus, partialUpsertFromStatus, toHybridSearchError } from "./errors.js";
export type { FieldViolation } from "./errors.js";
export * from "./gen/hybridsearch/v1/search.js";
// Named, not `export *`: both generated modules define DeepPartial, MessageFns and protobufFileName.
export {
  CompactRequest,
  CompactResponse,
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
export {
  AddAlias,
  AliasAction,
  CollectionInfo,
  CollectionSchema,
  CollectionServiceClient,
  CollectionServiceService,
  CreateCollectionRequest,
  CreateCollectionResponse,
  DeleteCollectionRequest,
  DeleteCollectionResponse,
  DenseIndexKind,
  GetCollectionRequest,
  GetCollectionResponse,
  ListCollectionsRequest,
  ListCollectionsResponse,
  MetadataField,
  MetadataType,
  RemoveAlias,
  UpdateAliasesRequest,
  UpdateAliasesResponse,
} from "./gen/hybridsearch/v1/collection.js";
export type { CollectionServiceServer } from "./gen/hybridsearch/v1/collection.js";
export { Condition, Exists, Filter, HasId, IsNull, Match, MatchValue, Range, RangeBound } from "./gen/hybridsearch/v1/filter.js";
