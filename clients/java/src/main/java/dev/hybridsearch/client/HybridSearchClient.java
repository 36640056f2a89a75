package dev.hybridsearch.client;

import dev.hybridsearch.v1.AliasAction;
import dev.hybridsearch.v1.BatchSearchRequest;
import dev.hybridsearch.v1.CollectionInfo;
import dev.hybridsearch.v1.CollectionServiceGrpc;
import dev.hybridsearch.v1.CompactRequest;
import dev.hybridsearch.v1.CompactResponse;
import dev.hybridsearch.v1.DeleteCollectionRequest;
import dev.hybridsearch.v1.DeleteDocumentsRequest;
import dev.hybridsearch.v1.DeleteDocumentsResponse;
import dev.hybridsearch.v1.Document;
import dev.hybridsearch.v1.GetCollectionRequest;
import dev.hybridsearch.v1.GetDocumentRequest;
import dev.hybridsearch.v1.GetIndexStatsRequest;
import dev.hybridsearch.v1.GetIndexStatsResponse;
import dev.hybridsearch.v1.IndexServiceGrpc;
import dev.hybridsearch.v1.ListCollectionsRequest;
import dev.hybridsearch.v1.RejectedDocument;
import dev.hybridsearch.v1.SearchRequest;
import dev.hybridsearch.v1.SearchResponse;
import dev.hybridsearch.v1.SearchServiceGrpc;
import dev.hybridsearch.v1.SearchStreamRequest;
import dev.hybridsearch.v1.UpsertDocumentsRequest;
import dev.hybridsearch.v1.UpdateAliasesRequest;
import dev.hybridsearch.v1.UpsertDocumentsResponse;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.MetadataUtils;
import java.io.File;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Blocking client for {@code hybridsearch.v1.SearchService}, {@code IndexService} and
 * {@code CollectionService}: a default deadline with per-call overrides, optional TLS (root
 * certificates, client certificate and key) and bearer token, a target collection
 * ({@link #withCollection(String)}); failures are {@link HybridSearchException}s. Filters are
 * built with {@link Filters}, highlight options and readers are in {@link Highlights}.
 * Thread-safe; close it when done.
 */
public final class HybridSearchClient implements AutoCloseable {
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);
  /** Documents per {@code UpsertDocumentsRequest}, i.e. per atomic commit. */
  public static final int DEFAULT_BATCH_SIZE = 100;
  /** Serialized bytes at which a batch is cut early (the server takes 16 MiB messages). */
  public static final int DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;

  /**
   * Largest reply a client accepts unless {@link Builder#maxInboundMessageSize} says otherwise:
   * 16 MiB, the server's {@code --max-message-bytes} default (gRPC's own is 4 MiB).
   */
  public static final int DEFAULT_MAX_INBOUND_MESSAGE_BYTES = 16 * 1024 * 1024;

  /**
   * One answer on a stream: exactly one of {@code response} and {@code error} is non-null.
   * {@code partial} is true on the early BM25-only answer of a {@code progressive} request
   * (hybrid query); the final answer for the same {@code requestId} follows with {@code partial}
   * false.
   */
  public record StreamResult(String requestId, SearchResponse response, HybridSearchException error, boolean partial) {
    /** A final (not partial) answer. */
    public StreamResult(String requestId, SearchResponse response, HybridSearchException error) {
      this(requestId, response, error, false);
    }
  }

  /**
   * What an upsert stream did, summed over its batches. protoc names the response's accessors
   * {@code getRejectedCount2()} and {@code getRejected3List()} ({@code rejected_count} clashes
   * with the count accessor of the repeated {@code rejected}); this record gives them plain
   * names. {@code response} is the message itself.
   */
  public record UpsertResult(
      long acceptedCount,
      long replacedCount,
      long rejectedCount,
      List<RejectedDocument> rejected,
      long generation,
      UpsertDocumentsResponse response) {
    static UpsertResult of(UpsertDocumentsResponse response) {
      return new UpsertResult(
          response.getAcceptedCount(),
          response.getReplacedCount(),
          response.getRejectedCount2(),
          response.getRejected3List(),
          response.getGeneration(),
          response);
    }
  }

  private final ManagedChannel channel;
  private final SearchServiceGrpc.SearchServiceBlockingStub blocking;
  private final SearchServiceGrpc.SearchServiceStub async;
  private final IndexServiceGrpc.IndexServiceBlockingStub indexBlocking;
  private final IndexServiceGrpc.IndexServiceStub index;
  private final CollectionServiceGrpc.CollectionServiceBlockingStub collections;
  private final Duration timeout;
  private final String collection; // "" = the server's default collection

  private HybridSearchClient(Builder builder) throws IOException {
    ChannelCredentials credentials;
    if (builder.tls) {
      TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
      if (builder.rootCerts != null) {
        tls.trustManager(builder.rootCerts);
      }
      if (builder.clientCertChain != null) {
        tls.keyManager(builder.clientCertChain, builder.clientKey);
      }
      credentials = tls.build();
    } else {
      credentials = InsecureChannelCredentials.create();
    }
    channel = Grpc.newChannelBuilder(builder.target, credentials)
        .maxInboundMessageSize(builder.maxInboundMessageBytes)
        .build();
    List<ClientInterceptor> interceptors = new ArrayList<>();
    if (builder.bearerToken != null) {
      Metadata headers = new Metadata();
      headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + builder.bearerToken);
      interceptors.add(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
    blocking = SearchServiceGrpc.newBlockingStub(channel).withInterceptors(interceptors.toArray(ClientInterceptor[]::new));
    async = SearchServiceGrpc.newStub(channel).withInterceptors(interceptors.toArray(ClientInterceptor[]::new));
    indexBlocking = IndexServiceGrpc.newBlockingStub(channel).withInterceptors(interceptors.toArray(ClientInterceptor[]::new));
    index = IndexServiceGrpc.newStub(channel).withInterceptors(interceptors.toArray(ClientInterceptor[]::new));
    collections =
        CollectionServiceGrpc.newBlockingStub(channel).withInterceptors(interceptors.toArray(ClientInterceptor[]::new));
    timeout = builder.timeout;
    collection = "";
  }

  private HybridSearchClient(HybridSearchClient base, String collection) {
    channel = base.channel;
    blocking = base.blocking;
    async = base.async;
    indexBlocking = base.indexBlocking;
    index = base.index;
    collections = base.collections;
    timeout = base.timeout;
    this.collection = collection == null ? "" : collection;
  }

  /**
   * A client on the same channel whose searches and index calls go to {@code collection} (a
   * name or an alias) instead of the server's default collection: a {@code SearchRequest}
   * (also in a batch or on a stream) that leaves {@code collection} empty is sent with this
   * one, a request that names a collection keeps it; {@code upsertDocuments},
   * {@code deleteDocuments}, {@code getDocument}, {@code getIndexStats} and {@code compact}
   * act on it. Empty means the server's default collection. The clients share the channel:
   * closing any of them closes it for all.
   */
  public HybridSearchClient withCollection(String collection) {
    return new HybridSearchClient(this, collection);
  }

  /** The collection (or alias) this client targets; empty: the server's default collection. */
  public String collection() {
    return collection;
  }

  private SearchRequest scoped(SearchRequest request) {
    if (collection.isEmpty() || !request.getCollection().isEmpty()) {
      return request;
    }
    return request.toBuilder().setCollection(collection).build();
  }

  private SearchStreamRequest scoped(SearchStreamRequest request) {
    if (collection.isEmpty() || !request.hasSearch() || !request.getSearch().getCollection().isEmpty()) {
      return request;
    }
    return request.toBuilder().setSearch(scoped(request.getSearch())).build();
  }

  public static Builder newBuilder(String target) {
    return new Builder(target);
  }

  /** Runs one query with the default deadline. */
  public SearchResponse search(SearchRequest request) {
    return search(request, timeout);
  }

  /** Runs one query with its own deadline. */
  public SearchResponse search(SearchRequest request, Duration deadline) {
    try {
      return blocking.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS).search(scoped(request));
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /**
   * Runs several queries in one call; responses come back in request order. Each request names
   * its own collection, or gets this client's.
   */
  public List<SearchResponse> batchSearch(List<SearchRequest> requests) {
    return batchSearch(requests, timeout);
  }

  public List<SearchResponse> batchSearch(List<SearchRequest> requests, Duration deadline) {
    try {
      return blocking
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .batchSearch(BatchSearchRequest.newBuilder().addAllRequests(requests.stream().map(this::scoped).toList()).build())
          .getResponsesList();
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /**
   * Opens one stream, sends {@code requests} on it (pulled lazily by a sender thread) and
   * returns the answers as an iterator, in arrival order (not request order). A per-request
   * failure is {@link StreamResult#error()}; a failed stream makes {@link ResultStream#next()}
   * throw. Close the stream if you stop reading early (try-with-resources). Each request's
   * search names its own collection, or gets this client's.
   */
  public ResultStream searchStream(Iterable<SearchStreamRequest> requests) {
    return searchStream(requests, timeout);
  }

  /** As {@link #searchStream(Iterable)}, with a deadline for the whole stream. */
  public ResultStream searchStream(Iterable<SearchStreamRequest> requests, Duration deadline) {
    return ResultStream.open(
        observer -> async.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS).searchStream(observer),
        scoped(requests.iterator()));
  }

  private Iterator<SearchStreamRequest> scoped(Iterator<SearchStreamRequest> requests) {
    if (collection.isEmpty()) {
      return requests;
    }
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return requests.hasNext();
      }

      @Override
      public SearchStreamRequest next() {
        return scoped(requests.next());
      }
    };
  }

  // IndexService

  /**
   * Streams documents to {@code UpsertDocuments} in batches of {@link #DEFAULT_BATCH_SIZE}
   * with the default deadline; see {@link #upsertDocuments(Iterable, int, Duration)}.
   */
  public UpsertResult upsertDocuments(Iterable<Document> documents) {
    return upsertDocuments(documents, DEFAULT_BATCH_SIZE, timeout);
  }

  /**
   * Streams {@code documents} to this client's collection (iterated lazily on the calling thread, sent as the transport
   * takes them) in {@code UpsertDocumentsRequest} batches of at most {@code batchSize}
   * documents and, past the first document, {@link #DEFAULT_MAX_BATCH_BYTES} serialized bytes.
   * Each batch is one atomic commit; the response sums them (accepted, replaced and rejected
   * counts, each rejection with position, id and reason, and the generation). If the call
   * fails midway the batches sent before stay committed, and the {@link HybridSearchException}'s
   * {@link HybridSearchException#partialUpsert()} says how many were applied (when the server
   * sent it); an exception thrown by the iterator cancels the call and propagates unchanged.
   */
  public UpsertResult upsertDocuments(Iterable<Document> documents, int batchSize, Duration deadline) {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batchSize must be at least 1, got " + batchSize);
    }
    Upload upload = new Upload(collection);
    index.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS).upsertDocuments(upload);
    try {
      List<Document> batch = new ArrayList<>();
      long batchBytes = 0;
      boolean open = true;
      for (Iterator<Document> it = documents.iterator(); open && it.hasNext(); ) {
        Document document = it.next();
        long size = document.getSerializedSize() + 8L; // tag and length prefix, generously
        if (!batch.isEmpty() && batchBytes + size > DEFAULT_MAX_BATCH_BYTES) {
          open = upload.send(batch);
          batch = new ArrayList<>();
          batchBytes = 0;
        }
        batch.add(document);
        batchBytes += size;
        if (open && batch.size() >= batchSize) {
          open = upload.send(batch);
          batch = new ArrayList<>();
          batchBytes = 0;
        }
      }
      if (open && (batch.isEmpty() || upload.send(batch))) {
        upload.complete();
      }
    } catch (RuntimeException e) {
      upload.cancel(e);
      throw e;
    }
    return UpsertResult.of(upload.await());
  }

  /**
   * Deletes documents by id from this client's collection in one commit; ids with no live
   * document are in {@code notFoundIds}.
   */
  public DeleteDocumentsResponse deleteDocuments(List<String> ids) {
    return deleteDocuments(ids, timeout);
  }

  public DeleteDocumentsResponse deleteDocuments(List<String> ids, Duration deadline) {
    try {
      return indexBlocking
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .deleteDocuments(DeleteDocumentsRequest.newBuilder().addAllIds(ids).setCollection(collection).build());
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /** One document's stored fields; a missing id (or collection) throws with code {@code NOT_FOUND}. */
  public Document getDocument(String id) {
    return getDocument(id, timeout);
  }

  public Document getDocument(String id, Duration deadline) {
    try {
      return indexBlocking
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .getDocument(GetDocumentRequest.newBuilder().setId(id).setCollection(collection).build())
          .getDocument();
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /** Statistics of this client's collection as of its last commit. */
  public GetIndexStatsResponse getIndexStats() {
    return getIndexStats(timeout);
  }

  public GetIndexStatsResponse getIndexStats(Duration deadline) {
    try {
      return indexBlocking
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .getIndexStats(GetIndexStatsRequest.newBuilder().setCollection(collection).build());
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /**
   * Compacts this client's collection now (rewrites it without the rows of deleted or replaced
   * documents, as one commit), whatever the server's background policy says.
   */
  public CompactResponse compact() {
    return compact(timeout);
  }

  public CompactResponse compact(Duration deadline) {
    try {
      return indexBlocking
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .compact(CompactRequest.newBuilder().setCollection(collection).build());
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  // CollectionService

  /**
   * Creates an empty collection; a taken name (collection or alias) throws
   * {@code ALREADY_EXISTS}, an invalid name or schema {@code INVALID_ARGUMENT}.
   */
  public CollectionInfo createCollection(String name, CollectionConfig config) {
    return createCollection(name, config, timeout);
  }

  public CollectionInfo createCollection(String name, CollectionConfig config, Duration deadline) {
    try {
      return collections
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .createCollection(config.toRequest(name))
          .getCollection();
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /** Every collection of the server, in name order. */
  public List<CollectionInfo> listCollections() {
    return listCollections(timeout);
  }

  public List<CollectionInfo> listCollections(Duration deadline) {
    try {
      return collections
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .listCollections(ListCollectionsRequest.getDefaultInstance())
          .getCollectionsList();
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /**
   * One collection, by name or alias (the answer carries its own name); empty: the default
   * collection. Unknown: {@code NOT_FOUND}.
   */
  public CollectionInfo getCollection(String nameOrAlias) {
    return getCollection(nameOrAlias, timeout);
  }

  public CollectionInfo getCollection(String nameOrAlias, Duration deadline) {
    try {
      return collections
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .getCollection(GetCollectionRequest.newBuilder().setName(nameOrAlias).build())
          .getCollection();
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /**
   * Deletes a collection (by its name, not an alias) and its aliases, which it returns.
   * Unknown: {@code NOT_FOUND}; the default collection: {@code FAILED_PRECONDITION}.
   */
  public List<String> deleteCollection(String name) {
    return deleteCollection(name, timeout);
  }

  public List<String> deleteCollection(String name, Duration deadline) {
    try {
      return collections
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .deleteCollection(DeleteCollectionRequest.newBuilder().setName(name).build())
          .getRemovedAliasesList();
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /**
   * Applies 1 to 100 alias actions ({@link Aliases#add}, {@link Aliases#remove}) in order and
   * atomically: every search sees all of them or none, and if one is invalid none is applied.
   * Returns every alias of the server afterwards, alias to collection.
   */
  public Map<String, String> updateAliases(AliasAction... actions) {
    return updateAliases(List.of(actions), timeout);
  }

  /** As {@link #updateAliases(AliasAction...)}, for a list. */
  public Map<String, String> updateAliases(List<AliasAction> actions) {
    return updateAliases(actions, timeout);
  }

  public Map<String, String> updateAliases(List<AliasAction> actions, Duration deadline) {
    try {
      return collections
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .updateAliases(UpdateAliasesRequest.newBuilder().addAllActions(actions).build())
          .getAliasesMap();
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /** Points {@code alias} at {@code collection}, creating or moving it; returns every alias. */
  public Map<String, String> setAlias(String alias, String collection) {
    return updateAliases(Aliases.add(alias, collection));
  }

  /** Deletes {@code alias} ({@code NOT_FOUND} when there is none); returns every alias left. */
  public Map<String, String> removeAlias(String alias) {
    return updateAliases(Aliases.remove(alias));
  }

  /** One UpsertDocuments call: sends batches under flow control, then waits for the summary. */
  private static final class Upload implements ClientResponseObserver<UpsertDocumentsRequest, UpsertDocumentsResponse> {
    private final CompletableFuture<UpsertDocumentsResponse> result = new CompletableFuture<>();
    private final Object ready = new Object();
    private final String collection;
    private ClientCallStreamObserver<UpsertDocumentsRequest> call;

    Upload(String collection) {
      this.collection = collection;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<UpsertDocumentsRequest> requestStream) {
      call = requestStream;
      requestStream.setOnReadyHandler(this::wake);
    }

    private void wake() {
      synchronized (ready) {
        ready.notifyAll();
      }
    }

    /** Sends one batch once the transport is ready; false when the call has already ended. */
    boolean send(List<Document> batch) {
      synchronized (ready) {
        while (!result.isDone() && !call.isReady()) {
          try {
            ready.wait();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw HybridSearchException.fromThrowable(e);
          }
        }
      }
      if (result.isDone()) {
        return false;
      }
      call.onNext(UpsertDocumentsRequest.newBuilder().addAllDocuments(batch).setCollection(collection).build());
      return true;
    }

    void complete() {
      if (!result.isDone()) {
        call.onCompleted();
      }
    }

    void cancel(Throwable cause) {
      call.cancel("upsert cancelled by the client", cause);
    }

    UpsertDocumentsResponse await() {
      try {
        return result.get();
      } catch (ExecutionException e) {
        throw HybridSearchException.fromThrowable(e.getCause());
      } catch (InterruptedException e) {
        cancel(e);
        Thread.currentThread().interrupt();
        throw HybridSearchException.fromThrowable(e);
      }
    }

    @Override
    public void onNext(UpsertDocumentsResponse response) {
      result.complete(response);
    }

    @Override
    public void onError(Throwable t) {
      result.completeExceptionally(t);
      wake();
    }

    @Override
    public void onCompleted() {
      result.completeExceptionally(Status.INTERNAL.withDescription("UpsertDocuments ended without a response").asRuntimeException());
      wake(); // a no-op after onNext completed the result
    }
  }

  /** The generated blocking stub, for calls the wrapper does not cover. */
  public SearchServiceGrpc.SearchServiceBlockingStub blockingStub() {
    return blocking;
  }

  /** The generated IndexService blocking stub. */
  public IndexServiceGrpc.IndexServiceBlockingStub indexBlockingStub() {
    return indexBlocking;
  }

  /** The generated CollectionService blocking stub. */
  public CollectionServiceGrpc.CollectionServiceBlockingStub collectionBlockingStub() {
    return collections;
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdown();
    if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
      channel.shutdownNow();
    }
  }

  /** Settings of a {@link HybridSearchClient}; plaintext unless {@link #tls} is called. */
  public static final class Builder {
    private final String target;
    private Duration timeout = DEFAULT_TIMEOUT;
    private boolean tls;
    private File rootCerts;
    private File clientCertChain;
    private File clientKey;
    private String bearerToken;
    private int maxInboundMessageBytes = DEFAULT_MAX_INBOUND_MESSAGE_BYTES;

    private Builder(String target) {
      this.target = target;
    }

    /** Default deadline of every call. */
    public Builder timeout(Duration value) {
      timeout = value;
      return this;
    }

    /** TLS; {@code rootCerts} null means the system roots. PEM files. */
    public Builder tls(File rootCerts) {
      tls = true;
      this.rootCerts = rootCerts;
      return this;
    }

    /** Mutual TLS: a PEM certificate chain and its PKCS#8 PEM key. */
    public Builder clientCertificate(File certChain, File privateKey) {
      tls = true;
      clientCertChain = certChain;
      clientKey = privateKey;
      return this;
    }

    /** Sent as {@code authorization: Bearer <token>} on every call. */
    public Builder bearerToken(String token) {
      bearerToken = token;
      return this;
    }

    /**
     * Largest reply accepted, in bytes (default {@link #DEFAULT_MAX_INBOUND_MESSAGE_BYTES}, 16
     * MiB); raise it for a server with a larger {@code --max-message-bytes}.
     */
    public Builder maxInboundMessageSize(int bytes) {
      if (bytes <= 0) {
        throw new IllegalArgumentException("maxInboundMessageSize must be positive, got " + bytes);
      }
      maxInboundMessageBytes = bytes;
      return this;
    }

    public HybridSearchClient build() throws IOException {
      return new HybridSearchClient(this);
    }
  }
}
