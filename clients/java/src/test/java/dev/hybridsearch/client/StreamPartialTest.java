package dev.hybridsearch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.hybridsearch.client.HybridSearchClient.StreamResult;
import dev.hybridsearch.v1.SearchRequest;
import dev.hybridsearch.v1.SearchResponse;
import dev.hybridsearch.v1.SearchServiceGrpc;
import dev.hybridsearch.v1.SearchStreamRequest;
import dev.hybridsearch.v1.SearchStreamResponse;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Against a fake SearchService on a local port: no hybridsearch server needed. */
class StreamPartialTest {
  /** Answers every request twice: a partial answer, then the final one. */
  private static final class Fake extends SearchServiceGrpc.SearchServiceImplBase {
    @Override
    public StreamObserver<SearchStreamRequest> searchStream(StreamObserver<SearchStreamResponse> out) {
      return new StreamObserver<>() {
        @Override
        public void onNext(SearchStreamRequest request) {
          for (boolean partial : new boolean[] {true, false}) {
            out.onNext(SearchStreamResponse.newBuilder()
                .setRequestId(request.getRequestId())
                .setResponse(SearchResponse.getDefaultInstance())
                .setPartial(partial)
                .build());
          }
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          out.onCompleted();
        }
      };
    }
  }

  @Test
  void streamResultsCarryThePartialFlag() throws Exception {
    Server server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()).addService(new Fake()).build().start();
    try (HybridSearchClient client = HybridSearchClient.newBuilder("127.0.0.1:" + server.getPort()).build()) {
      SearchStreamRequest request = SearchStreamRequest.newBuilder()
          .setRequestId("p")
          .setSearch(SearchRequest.newBuilder().setQuery("q"))
          .setProgressive(true)
          .build();
      List<String> got = new ArrayList<>();
      try (ResultStream stream = client.searchStream(List.of(request))) {
        while (stream.hasNext()) {
          StreamResult r = stream.next();
          got.add(r.requestId() + ":" + r.partial());
        }
      }
      assertEquals(List.of("p:true", "p:false"), got);
    } finally {
      server.shutdownNow();
    }
  }
}
