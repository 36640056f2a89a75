package dev.hybridsearch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridsearch.client.HybridSearchClient.StreamResult;
import dev.hybridsearch.v1.Hit;
import dev.hybridsearch.v1.RetrievalMode;
import dev.hybridsearch.v1.SearchRequest;
import dev.hybridsearch.v1.SearchResponse;
import dev.hybridsearch.v1.SearchStreamRequest;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Against a live server named by HYBRIDSEARCH_ADDR (system property or environment). */
class HybridSearchClientTest {
  private static final RetrievalMode SPARSE = RetrievalMode.RETRIEVAL_MODE_SPARSE;
  // Words that occur in the bundled sample corpus, so BM25 returns hits.
  private static final String QUERY = setting("HYBRIDSEARCH_TEST_QUERY", "boundary layer");
  private static final String OTHER_QUERY = setting("HYBRIDSEARCH_TEST_OTHER_QUERY", "supersonic flow");
  private static HybridSearchClient client;

  private static String setting(String key, String fallback) {
    String value = System.getProperty(key);
    if (value == null || value.isEmpty()) {
      value = System.getenv(key);
    }
    return value == null || value.isEmpty() ? fallback : value;
  }

  @BeforeAll
  static void connect() throws Exception {
    String addr = setting("HYBRIDSEARCH_ADDR", "");
    assumeTrue(!addr.isEmpty(), "HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh to start a server");
    client = HybridSearchClient.newBuilder(addr).timeout(Duration.ofSeconds(10)).bearerToken("test").build();
  }

  @AfterAll
  static void close() throws Exception {
    if (client != null) {
      client.close();
    }
  }

  private static SearchRequest request(String query, int topK) {
    return SearchRequest.newBuilder().setQuery(query).setTopK(topK).setMode(SPARSE).build();
  }

  private static void assertRanked(SearchResponse response, int topK) {
    assertNotNull(response);
    List<Hit> hits = response.getHitsList();
    assertFalse(hits.isEmpty(), "no hits");
    assertTrue(hits.size() <= topK);
    for (int i = 0; i < hits.size(); i++) {
      assertEquals(i + 1, hits.get(i).getRank());
      if (i > 0) {
        assertTrue(hits.get(i).getScore() <= hits.get(i - 1).getScore());
      }
    }
    assertEquals(SPARSE, response.getApplied().getMode());
    assertEquals(topK, response.getApplied().getTopK());
  }

  private static List<String> ids(SearchResponse response) {
    return response.getHitsList().stream().map(Hit::getId).toList();
  }

  private static List<String> fields(HybridSearchException e) {
    return e.fieldViolations().stream().map(HybridSearchException.FieldViolation::field).toList();
  }

  @Test
  void search() {
    assertRanked(client.search(request(QUERY, 3)), 3);
  }

  @Test
  void batchSearchKeepsRequestOrder() {
    List<SearchRequest> requests = List.of(request(QUERY, 5), request(OTHER_QUERY, 5));
    List<SearchResponse> batch = client.batchSearch(requests);
    assertEquals(2, batch.size());
    for (int i = 0; i < requests.size(); i++) {
      assertEquals(ids(client.search(requests.get(i))), ids(batch.get(i)));
    }
  }

  @Test
  void batchSearchNamesTheBadRequest() {
    HybridSearchException e =
        assertThrows(HybridSearchException.class, () -> client.batchSearch(List.of(request(QUERY, 1), request("", 1))));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
    assertEquals(List.of("requests[1].query"), fields(e));
  }

  @Test
  void streamAnswersEveryIdAndReportsErrorsInBand() {
    List<StreamResult> results =
        client.searchStream(
            List.of(
                SearchStreamRequest.newBuilder().setRequestId("a").setSearch(request(QUERY, 3)).build(),
                SearchStreamRequest.newBuilder().setRequestId("bad").setSearch(request(" ", 3)).build(),
                SearchStreamRequest.newBuilder().setRequestId("b").setSearch(request(OTHER_QUERY, 2)).build()));
    Map<String, StreamResult> byId = new TreeMap<>();
    results.forEach(r -> byId.put(r.requestId(), r));
    assertEquals(List.of("a", "b", "bad"), List.copyOf(byId.keySet()));
    assertRanked(byId.get("a").response(), 3);
    assertRanked(byId.get("b").response(), 2);
    HybridSearchException error = byId.get("bad").error();
    assertNotNull(error);
    assertEquals(Status.Code.INVALID_ARGUMENT, error.code());
    assertEquals(List.of("query"), fields(error).stream().map(f -> f.replaceFirst("^search\\.", "")).toList());
  }

  @ParameterizedTest
  @CsvSource({"'', 0, query", "boundary, 1001, top_k"})
  void invalidArgumentCarriesFieldViolation(String query, int topK, String field) {
    HybridSearchException e = assertThrows(HybridSearchException.class, () -> client.search(request(query, topK)));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
    assertEquals(List.of(field), fields(e));
    assertFalse(e.fieldViolations().get(0).description().isEmpty());
  }

  @Test
  void perCallDeadlineOverridesDefault() {
    HybridSearchException e =
        assertThrows(HybridSearchException.class, () -> client.search(request(QUERY, 1), Duration.ofNanos(-1)));
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.code());
  }
}
