package dev.hybridsearch.client;

import dev.hybridsearch.v1.BatchSearchRequest;
import dev.hybridsearch.v1.DeleteDocumentsRequest;
import dev.hybridsearch.v1.DeleteDocumentsResponse;
import dev.hybridsearch.v1.Document;
import dev.hybridsearch.v1.GetDocumentRequest;
import dev.hybridsearch.v1.GetIndexStatsRequest;
import dev.hybridsearch.v1.GetIndexStatsResponse;
import dev.hybridsearch.v1.IndexServiceGrpc;
import dev.hybridsearch.v1.RejectedDocument;
import dev.hybridsearch.v1.SearchRequest;
import dev.hybridsearch.v1.SearchResponse;
import dev.hybridsearch.v1.SearchServiceGrpc;
import dev.hybridsearch.v1.SearchStreamRequest;
import dev.hybridsearch.v1.UpsertDocumentsRequest;
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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Blocking client for {@code hybridsearch.v1.SearchService} and {@code IndexService}: a default deadline with per-call
 * overrides, optional TLS (root certificates, client certificate and key) and bearer token;
 * failures are {@link HybridSearchException}s. Thread-safe; close it when done.
 */
public final class HybridSearchClient implements AutoCloseable {
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);
  /** Documents per {@code UpsertDocumentsRequest}, i.e. per atomic commit. */
  public static final int DEFAULT_BATCH_SIZE = 100;
  /** Serialized bytes at which a batch is cut early (the server takes 16 MiB messages). */
  public static final int DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;

  /** One answer on a stream: exactly one of {@code response} and {@code error} is non-null. */
  public record StreamResult(String requestId, SearchResponse response, HybridSearchException error) {}

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
  private final Duration timeout;

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
    channel = Grpc.newChannelBuilder(builder.target, credentials).build();
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
    timeout = builder.timeout;
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
      return blocking.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS).search(request);
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /** Runs several queries in one call; responses come back in request order. */
  public List<SearchResponse> batchSearch(List<SearchRequest> requests) {
    return batchSearch(requests, timeout);
  }

  public List<SearchResponse> batchSearch(List<SearchRequest> requests, Duration deadline) {
    try {
      return blocking
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .batchSearch(BatchSearchRequest.newBuilder().addAllRequests(requests).build())
          .getResponsesList();
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /**
   * Opens one stream, sends {@code requests} on it (pulled lazily by a sender thread) and
   * returns the answers as an iterator, in arrival order (not request order). A per-request
   * failure is {@link StreamResult#error()}; a failed stream makes {@link ResultStream#next()}
   * throw. Close the stream if you stop reading early (try-with-resources).
   */
  public ResultStream searchStream(Iterable<SearchStreamRequest> requests) {
    return searchStream(requests, timeout);
  }

  /** As {@link #searchStream(Iterable)}, with a deadline for the whole stream. */
  public ResultStream searchStream(Iterable<SearchStreamRequest> requests, Duration deadline) {
    return ResultStream.open(
        observer -> async.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS).searchStream(observer),
        requests.iterator());
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
   * Streams {@code documents} (iterated lazily on the calling thread, sent as the transport
   * takes them) in {@code UpsertDocumentsRequest} batches of at most {@code batchSize}
   * documents and, past the first document, {@link #DEFAULT_MAX_BATCH_BYTES} serialized bytes.
   * Each batch is one atomic commit; the response sums them (accepted, replaced and rejected
   * counts, each rejection with position, id and reason, and the generation). If the call
   * fails midway the batches sent before stay committed; an exception thrown by the iterator
   * cancels the call and propagates unchanged.
   */
  public UpsertResult upsertDocuments(Iterable<Document> documents, int batchSize, Duration deadline) {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batchSize must be at least 1, got " + batchSize);
    }
    Upload upload = new Upload();
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

  /** Deletes documents by id in one commit; ids with no live document are in {@code notFoundIds}. */
  public DeleteDocumentsResponse deleteDocuments(List<String> ids) {
    return deleteDocuments(ids, timeout);
  }

  public DeleteDocumentsResponse deleteDocuments(List<String> ids, Duration deadline) {
    try {
      return indexBlocking
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .deleteDocuments(DeleteDocumentsRequest.newBuilder().addAllIds(ids).build());
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /** One document's stored fields; a missing id throws with code {@code NOT_FOUND}. */
  public Document getDocument(String id) {
    return getDocument(id, timeout);
  }

  public Document getDocument(String id, Duration deadline) {
    try {
      return indexBlocking
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .getDocument(GetDocumentRequest.newBuilder().setId(id).build())
          .getDocument();
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /** Statistics of the served index as of its last commit. */
  public GetIndexStatsResponse getIndexStats() {
    return getIndexStats(timeout);
  }

  public GetIndexStatsResponse getIndexStats(Duration deadline) {
    try {
      return indexBlocking
          .withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
          .getIndexStats(GetIndexStatsRequest.getDefaultInstance());
    } catch (StatusRuntimeException e) {
      throw HybridSearchException.fromThrowable(e);
    }
  }

  /** One UpsertDocuments call: sends batches under flow control, then waits for the summary. */
  private static final class Upload implements ClientResponseObserver<UpsertDocumentsRequest, UpsertDocumentsResponse> {
    private final CompletableFuture<UpsertDocumentsResponse> result = new CompletableFuture<>();
    private final Object ready = new Object();
    private ClientCallStreamObserver<UpsertDocumentsRequest> call;

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
      call.onNext(UpsertDocumentsRequest.newBuilder().addAllDocuments(batch).build());
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

    public HybridSearchClient build() throws IOException {
      return new HybridSearchClient(this);
    }
  }
}
