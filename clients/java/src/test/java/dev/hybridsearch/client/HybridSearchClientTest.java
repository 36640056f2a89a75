package dev.hybridsearch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import static org.junit.jupiter.api.Assertions.assertSame;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.hybridsearch.client.HybridSearchClient.StreamResult;
import dev.hybridsearch.client.HybridSearchClient.UpsertResult;
import dev.hybridsearch.v1.DeleteDocumentsResponse;
import dev.hybridsearch.v1.Document;
import dev.hybridsearch.v1.GetIndexStatsResponse;
import dev.hybridsearch.v1.Hit;
import dev.hybridsearch.v1.RetrievalMode;
import dev.hybridsearch.v1.SearchRequest;
import dev.hybridsearch.v1.SearchResponse;
import dev.hybridsearch.v1.SearchStreamRequest;
import dev.hybridsearch.v1.UpsertDocumentsResponse;
import io.grpc.Status;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
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

  /** A reply over gRPC's 4 MiB default (under the server's 16 MiB) is received. */
  @Test
  void batchSearchReceivesRepliesOver4MiB() {
    SearchRequest big = request(QUERY, 100).toBuilder()
        .addReturnFields(dev.hybridsearch.v1.StoredField.STORED_FIELD_TITLE)
        .addReturnFields(dev.hybridsearch.v1.StoredField.STORED_FIELD_TEXT)
        .build();
    List<SearchResponse> batch = client.batchSearch(java.util.Collections.nCopies(64, big), Duration.ofSeconds(60));
    long size = batch.stream().mapToLong(SearchResponse::getSerializedSize).sum();
    assertTrue(size > 4 * 1024 * 1024, "reply is " + size + " bytes, want over 4 MiB");
  }

  @Test
  void batchSearchNamesTheBadRequest() {
    HybridSearchException e =
        assertThrows(HybridSearchException.class, () -> client.batchSearch(List.of(request(QUERY, 1), request("", 1))));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
    assertEquals(List.of("requests[1].query"), fields(e));
  }

  private static SearchStreamRequest streamRequest(String id, SearchRequest search) {
    return SearchStreamRequest.newBuilder().setRequestId(id).setSearch(search).build();
  }

  @Test
  void streamAnswersEveryIdAndReportsErrorsInBand() {
    Map<String, StreamResult> byId = new TreeMap<>();
    try (ResultStream results =
        client.searchStream(
            List.of(
                streamRequest("a", request(QUERY, 3)),
                streamRequest("bad", request(" ", 3)),
                streamRequest("b", request(OTHER_QUERY, 2))))) {
      results.forEachRemaining(r -> byId.put(r.requestId(), r));
      assertFalse(results.hasNext());
      assertThrows(NoSuchElementException.class, results::next);
    }
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

  /** Requests from {@code first}, then {@code second} once {@code gate} opens (interruptible). */
  private static Iterable<SearchStreamRequest> gated(SearchStreamRequest first, CountDownLatch gate, SearchStreamRequest second) {
    return () ->
        new Iterator<>() {
          private int sent;

          @Override
          public boolean hasNext() {
            if (sent == 1) {
              try {
                if (!gate.await(10, TimeUnit.SECONDS)) {
                  throw new IllegalStateException("the first answer was not read while the stream was open");
                }
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
              }
            }
            return sent < 2;
          }

          @Override
          public SearchStreamRequest next() {
            return sent++ == 0 ? first : second;
          }
        };
  }

  /** The second request is only produced after the first answer was read. */
  @Test
  void streamIsLazy() {
    CountDownLatch firstRead = new CountDownLatch(1);
    try (ResultStream results =
        client.searchStream(
            gated(streamRequest("first", request(QUERY, 1)), firstRead, streamRequest("second", request(OTHER_QUERY, 1))))) {
      assertEquals("first", results.next().requestId());
      firstRead.countDown();
      assertEquals("second", results.next().requestId());
      assertFalse(results.hasNext());
    }
  }

  /** An answer arrives, then the deadline passes while the stream is held open. */
  @Test
  void streamErrorMidStreamSurfacesOnNext() {
    CountDownLatch never = new CountDownLatch(1);
    try (ResultStream results =
        client.searchStream(
            gated(streamRequest("only", request(QUERY, 1)), never, streamRequest("unsent", request(QUERY, 1))),
            Duration.ofSeconds(1))) {
      assertEquals("only", results.next().requestId());
      assertTrue(results.hasNext());
      HybridSearchException e = assertThrows(HybridSearchException.class, results::next);
      assertEquals(Status.Code.DEADLINE_EXCEEDED, e.code());
      assertFalse(results.hasNext());
    }
  }

  @Test
  void streamSourceFailureIsRethrown() {
    IllegalStateException broken = new IllegalStateException("source broke");
    Iterable<SearchStreamRequest> requests =
        () ->
            new Iterator<>() {
              @Override
              public boolean hasNext() {
                throw broken;
              }

              @Override
              public SearchStreamRequest next() {
                throw new NoSuchElementException();
              }
            };
    try (ResultStream results = client.searchStream(requests)) {
      assertTrue(results.hasNext());
      assertSame(broken, assertThrows(IllegalStateException.class, results::next));
    }
  }

  // IndexService: ids unique to this client, so the four clients' tests never collide.
  private static final List<String> LIVE_IDS = List.of("java-live-1", "java-live-2");
  private static final List<String> ALL_IDS = List.of("java-live-1", "java-live-2", "java-live-3");
  private static final String MARKER = "javalivemarker"; // a word no sample document holds

  @BeforeEach
  @AfterEach
  void deleteLiveDocuments() {
    client.deleteDocuments(ALL_IDS);
  }

  private static List<String> hitIds(String query) {
    return ids(client.search(SearchRequest.newBuilder().setQuery(query).setTopK(10).setMode(SPARSE).build()));
  }

  @Test
  void indexServiceRoundTrip() {
    GetIndexStatsResponse before = client.getIndexStats();
    assertTrue(before.getWritable());
    Struct metadata =
        Struct.newBuilder()
            .putFields("lang", Value.newBuilder().setStringValue("java").build())
            .putFields("n", Value.newBuilder().setNumberValue(1).build())
            .build();
    Document first =
        Document.newBuilder()
            .setId(LIVE_IDS.get(0))
            .setTitle("Java live document")
            .setText(MARKER + " boundary layer notes")
            .setMetadata(metadata)
            .build();
    Document second = Document.newBuilder().setId(LIVE_IDS.get(1)).setTitle("Second").setText("plain text").build();
    // batchSize 1: three messages on the stream; the blank id is rejected, not fatal.
    UpsertResult response =
        client.upsertDocuments(List.of(first, second, Document.newBuilder().setId("  ").build()), 1, Duration.ofSeconds(30));
    assertEquals(List.of(2L, 0L, 1L), List.of(response.acceptedCount(), response.replacedCount(), response.rejectedCount()));
    assertEquals(1, response.rejected().size());
    assertEquals(2, response.rejected().get(0).getPosition());
    assertEquals("  ", response.rejected().get(0).getId());
    assertFalse(response.rejected().get(0).getReason().isEmpty());
    assertTrue(response.generation() > before.getGeneration());
    assertEquals(response.generation(), response.response().getGeneration());

    GetIndexStatsResponse after = client.getIndexStats();
    assertEquals(before.getDocumentCount() + 2, after.getDocumentCount());
    assertEquals(response.generation(), after.getGeneration());
    assertEquals(first, client.getDocument(LIVE_IDS.get(0)));
    assertEquals(second, client.getDocument(LIVE_IDS.get(1)));
    assertEquals(List.of(LIVE_IDS.get(0)), hitIds(MARKER));

    UpsertResult replaced =
        client.upsertDocuments(List.of(Document.newBuilder().setId(LIVE_IDS.get(0)).setText("rewritten").build()));
    assertEquals(1, replaced.acceptedCount());
    assertEquals(1, replaced.replacedCount());
    assertEquals(List.of(), hitIds(MARKER));

    DeleteDocumentsResponse deleted = client.deleteDocuments(List.of(LIVE_IDS.get(0), LIVE_IDS.get(1), "java-live-missing"));
    assertEquals(2, deleted.getDeletedCount());
    assertEquals(List.of("java-live-missing"), deleted.getNotFoundIdsList());
    assertTrue(deleted.getGeneration() > replaced.generation());
    assertEquals(before.getDocumentCount(), client.getIndexStats().getDocumentCount());
    HybridSearchException e = assertThrows(HybridSearchException.class, () -> client.getDocument(LIVE_IDS.get(0)));
    assertEquals(Status.Code.NOT_FOUND, e.code());
  }

  @Test
  void upsertSourceFailureIsRethrown() {
    IllegalStateException broken = new IllegalStateException("source broke");
    Document committed = Document.newBuilder().setId("java-live-3").setText("sent before the failure").build();
    Iterable<Document> documents =
        () ->
            new Iterator<>() {
              private boolean sent;

              @Override
              public boolean hasNext() {
                if (sent) {
                  throw broken;
                }
                return true;
              }

              @Override
              public Document next() {
                sent = true;
                return committed;
              }
            };
    assertSame(broken, assertThrows(IllegalStateException.class, () -> client.upsertDocuments(documents, 1, Duration.ofSeconds(10))));
  }

  /**
   * Documents for a stream to {@code collection}: a message with one accepted document and one
   * rejected (a blank id); once that message is applied (its document found), the collection is
   * deleted, and the next document, in the stream's second message, meets NOT_FOUND.
   */
  private static Iterable<Document> deletingAfterFirstMessage(HybridSearchClient writer, String collection) {
    List<Document> first = List.of(
        Document.newBuilder().setId("java-partial-1").setText("applied").build(), Document.newBuilder().setId("  ").build());
    Document second = Document.newBuilder().setId("java-partial-2").setText("never applied").build();
    return () ->
        new Iterator<>() {
          private int given;

          @Override
          public boolean hasNext() {
            return given < 3;
          }

          @Override
          public Document next() {
            if (given < 2) {
              return first.get(given++);
            }
            awaitDocument(writer, "java-partial-1");
            client.deleteCollection(collection);
            given++;
            return second;
          }
        };
  }

  private static void awaitDocument(HybridSearchClient writer, String id) {
    long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (true) {
      try {
        writer.getDocument(id);
        return;
      } catch (HybridSearchException e) {
        if (e.code() != Status.Code.NOT_FOUND || System.nanoTime() > giveUp) {
          throw e;
        }
      }
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }

  @Test
  void upsertFailingPartWayCarriesThePartialResponse() {
    String name = "java-partial-" + java.util.UUID.randomUUID().toString().substring(0, 8);
    client.createCollection(name, CollectionConfig.builder().build());
    try {
      HybridSearchClient writer = client.withCollection(name);
      HybridSearchException e = assertThrows(HybridSearchException.class,
          () -> writer.upsertDocuments(deletingAfterFirstMessage(writer, name), 2, Duration.ofSeconds(60)));
      assertEquals(Status.Code.NOT_FOUND, e.code(), e.getMessage());
      UpsertDocumentsResponse partial = e.partialUpsert();
      assertNotNull(partial, "no partial response in " + e.getMessage());
      assertEquals(List.of(1L, 1L, 0L, 1L), List.of(
          partial.getAppliedMessages(), partial.getAcceptedCount(), partial.getReplacedCount(), partial.getRejectedCount2()));
      assertEquals(1, partial.getRejected3Count());
      assertEquals(1, partial.getRejected3(0).getPosition());
      assertEquals("  ", partial.getRejected3(0).getId());
      assertFalse(partial.getRejected3(0).getReason().isEmpty());
      assertTrue(partial.getGeneration() > 0, partial.toString());
    } finally {
      try {
        client.deleteCollection(name);
      } catch (HybridSearchException e) {
        if (e.code() != Status.Code.NOT_FOUND) {
          throw e;
        }
      }
    }
    HybridSearchException other = assertThrows(HybridSearchException.class, () -> client.getDocument("java-partial-1"));
    assertEquals(Status.Code.NOT_FOUND, other.code());
    assertNull(other.partialUpsert()); // only a failed upsert stream carries one
  }

  @Test
  void indexCallsMapErrors() {
    HybridSearchException blank = assertThrows(HybridSearchException.class, () -> client.getDocument(" "));
    assertEquals(Status.Code.INVALID_ARGUMENT, blank.code());
    assertEquals(List.of("id"), fields(blank));
    HybridSearchException none = assertThrows(HybridSearchException.class, () -> client.deleteDocuments(List.of()));
    assertEquals(List.of("ids"), fields(none));
    assertThrows(IllegalArgumentException.class, () -> client.upsertDocuments(List.of(), 0, Duration.ofSeconds(1)));
  }
}
