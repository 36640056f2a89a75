package dev.hybridsearch.client;

import dev.hybridsearch.v1.BatchSearchRequest;
import dev.hybridsearch.v1.SearchRequest;
import dev.hybridsearch.v1.SearchResponse;
import dev.hybridsearch.v1.SearchServiceGrpc;
import dev.hybridsearch.v1.SearchStreamRequest;
import dev.hybridsearch.v1.SearchStreamResponse;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.io.File;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Blocking client for {@code hybridsearch.v1.SearchService}: a default deadline with per-call
 * overrides, optional TLS (root certificates, client certificate and key) and bearer token;
 * failures are {@link HybridSearchException}s. Thread-safe; close it when done.
 */
public final class HybridSearchClient implements AutoCloseable {
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);

  /** One answer on a stream: exactly one of {@code response} and {@code error} is non-null. */
  public record StreamResult(String requestId, SearchResponse response, HybridSearchException error) {}

  private final ManagedChannel channel;
  private final SearchServiceGrpc.SearchServiceBlockingStub blocking;
  private final SearchServiceGrpc.SearchServiceStub async;
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
   * Sends every request on one stream and returns the answers in arrival order (not request
   * order). A per-request failure is {@link StreamResult#error()}; a failed stream throws.
   */
  public List<StreamResult> searchStream(List<SearchStreamRequest> requests) {
    return searchStream(requests, timeout);
  }

  public List<StreamResult> searchStream(List<SearchStreamRequest> requests, Duration deadline) {
    List<StreamResult> results = Collections.synchronizedList(new ArrayList<>());
    CompletableFuture<Void> done = new CompletableFuture<>();
    StreamObserver<SearchStreamResponse> responses =
        new StreamObserver<>() {
          @Override
          public void onNext(SearchStreamResponse message) {
            results.add(
                message.hasError()
                    ? new StreamResult(message.getRequestId(), null, HybridSearchException.fromStreamError(message.getError()))
                    : new StreamResult(message.getRequestId(), message.getResponse(), null));
          }

          @Override
          public void onError(Throwable t) {
            done.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {
            done.complete(null);
          }
        };
    StreamObserver<SearchStreamRequest> outgoing =
        async.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS).searchStream(responses);
    for (SearchStreamRequest request : requests) {
      outgoing.onNext(request);
    }
    outgoing.onCompleted();
    try {
      done.get();
    } catch (ExecutionException e) {
      throw HybridSearchException.fromThrowable(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw HybridSearchException.fromThrowable(e);
    }
    return List.copyOf(results);
  }

  /** The generated blocking stub, for calls the wrapper does not cover. */
  public SearchServiceGrpc.SearchServiceBlockingStub blockingStub() {
    return blocking;
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
