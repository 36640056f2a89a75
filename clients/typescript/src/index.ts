export { HybridSearchClient, DEFAULT_TIMEOUT_MS, toSearchRequest } from "./client.js";
export type { CallOptions, ClientOptions, QueryLike, StreamResult, TlsOptions } from "./client.js";
export { HybridSearchError, fieldViolationsFromStatus, toHybridSearchError } from "./errors.js";
export type { FieldViolation } from "./errors.js";
export * from "./gen/hybridsearch/v1/search.js";
