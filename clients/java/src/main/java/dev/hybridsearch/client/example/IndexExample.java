package dev.hybridsearch.client.example;

import dev.hybridsearch.client.HybridSearchClient;
import dev.hybridsearch.client.HybridSearchClient.StreamResult;
import dev.hybridsearch.client.HybridSearchClient.UpsertResult;
import dev.hybridsearch.client.HybridSearchException;
import dev.hybridsearch.client.ResultStream;
import dev.hybridsearch.v1.DeleteDocumentsResponse;
import dev.hybridsearch.v1.Document;
import dev.hybridsearch.v1.GetIndexStatsResponse;
import dev.hybridsearch.v1.RejectedDocument;
import dev.hybridsearch.v1.RetrievalMode;
import dev.hybridsearch.v1.SearchRequest;
import dev.hybridsearch.v1.SearchStreamRequest;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Upserts documents, reads one back, searches them on a stream and deletes them:
 * {@code mvn -q compile exec:java -Dexec.mainClass=dev.hybridsearch.client.example.IndexExample
 * -Dexec.args=127.0.0.1:50051}.
 */
public final class IndexExample {
  private IndexExample() {}

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "127.0.0.1:50051";
    try (HybridSearchClient client = HybridSearchClient.newBuilder(target).timeout(Duration.ofSeconds(30)).build()) {
      // Any Iterable works; it is iterated lazily while the batches are sent.
      Iterable<Document> documents =
          () ->
              IntStream.range(0, 1_000)
                  .mapToObj(i -> Document.newBuilder().setId("example-" + i).setTitle("Example " + i).setText("wombats").build())
                  .iterator();
      UpsertResult result = client.upsertDocuments(documents, 250, Duration.ofMinutes(5)); // 4 atomic commits
      System.out.printf("accepted %d, replaced %d, generation %d%n", result.acceptedCount(), result.replacedCount(), result.generation());
      for (RejectedDocument r : result.rejected()) {
        System.out.printf("rejected #%d %s: %s%n", r.getPosition(), r.getId(), r.getReason());
      }

      System.out.println(client.getDocument("example-7").getTitle());
      GetIndexStatsResponse stats = client.getIndexStats();
      System.out.printf("%d documents, generation %d%n", stats.getDocumentCount(), stats.getGeneration());

      List<SearchStreamRequest> queries =
          List.of("wombats", "example").stream()
              .map(q -> SearchStreamRequest.newBuilder().setRequestId(q)
                  .setSearch(SearchRequest.newBuilder().setQuery(q).setTopK(3).setMode(RetrievalMode.RETRIEVAL_MODE_SPARSE))
                  .build())
              .toList();
      try (ResultStream results = client.searchStream(queries)) {
        while (results.hasNext()) {
          StreamResult r = results.next(); // throws HybridSearchException if the stream fails
          System.out.println(r.requestId() + " " + (r.error() != null ? r.error().getMessage() : r.response().getHitsCount()));
        }
      }

      DeleteDocumentsResponse deleted = client.deleteDocuments(List.of("example-7", "missing"));
      System.out.println(deleted.getDeletedCount() + " deleted, not found " + deleted.getNotFoundIdsList());
      try {
        client.getDocument("example-7");
      } catch (HybridSearchException e) {
        System.out.println(e.code() == Status.Code.NOT_FOUND ? "gone" : e.getMessage());
      }
    }
  }
}
