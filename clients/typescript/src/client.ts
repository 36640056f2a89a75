// Typed wrapper over the ts-proto/grpc-js SearchService client: default and per-call
// deadlines, TLS, bearer token, errors as HybridSearchError.
import { type ChannelOptions, credentials, type ChannelCredentials, Metadata } from "@grpc/grpc-js";
import {
  type BatchSearchResponse,
  type DeepPartial,
  SearchRequest,
  type SearchResponse,
  SearchServiceClient,
  SearchStreamRequest,
  type SearchStreamResponse,
} from "./gen/hybridsearch/v1/search.js";
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

export class HybridSearchClient {
  readonly stub: SearchServiceClient;
  private readonly timeoutMs: number;
  private readonly bearerToken?: string;

  constructor(address: string, options: ClientOptions = {}) {
    const creds: ChannelCredentials = options.tls
      ? credentials.createSsl(options.tls.rootCerts ?? null, options.tls.privateKey ?? null, options.tls.certChain ?? null)
      : credentials.createInsecure();
    this.stub = new SearchServiceClient(address, creds, options.channelOptions);
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
   * Sends every request on one stream and yields answers as they arrive (any order). A
   * per-request failure is `StreamResult.error`; a failed stream throws HybridSearchError.
   */
  async *searchStream(
    requests: Iterable<DeepPartial<SearchStreamRequest>>,
    options?: CallOptions,
  ): AsyncGenerator<StreamResult> {
    const call = this.stub.searchStream(this.metadata(), { deadline: this.deadline(options) });
    for (const request of requests) call.write(SearchStreamRequest.fromPartial(request));
    call.end();
    try {
      for await (const message of call as AsyncIterable<SearchStreamResponse>) {
        yield message.error
          ? { requestId: message.requestId, error: fromStreamError(message.error) }
          : { requestId: message.requestId, response: message.response };
      }
    } catch (err) {
      throw toHybridSearchError(err);
    } finally {
      call.cancel();
    }
  }

  close(): void {
    this.stub.close();
  }
}
