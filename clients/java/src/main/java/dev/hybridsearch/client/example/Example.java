package dev.hybridsearch.client.example;

import dev.hybridsearch.client.HybridSearchClient;
import dev.hybridsearch.client.HybridSearchException;
import dev.hybridsearch.v1.Hit;
import dev.hybridsearch.v1.RetrievalMode;
import dev.hybridsearch.v1.SearchRequest;
import java.time.Duration;

/** Runs one sparse query: {@code mvn -q compile exec:java -Dexec.args="127.0.0.1:50051 'boundary layer'"}. */
public final class Example {
  private Example() {}

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "127.0.0.1:50051";
    String query = args.length > 1 ? args[1] : "boundary layer";
    try (HybridSearchClient client = HybridSearchClient.newBuilder(target).timeout(Duration.ofSeconds(5)).build()) {
      SearchRequest request =
          SearchRequest.newBuilder().setQuery(query).setTopK(5).setMode(RetrievalMode.RETRIEVAL_MODE_SPARSE).build();
      for (Hit hit : client.search(request).getHitsList()) {
        System.out.printf("%2d  %-20s %.4f%n", hit.getRank(), hit.getId(), hit.getScore());
      }
    } catch (HybridSearchException e) {
      System.err.println(e.code() + " " + e.serverMessage() + " " + e.fieldViolations());
      System.exit(1);
    }
  }
}
