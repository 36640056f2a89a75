package dev.hybridsearch.client;

import static dev.hybridsearch.client.Filters.gte;
import static dev.hybridsearch.client.Filters.range;
import static dev.hybridsearch.client.Filters.where;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.protobuf.Struct;
import com.google.protobuf.TextFormat;
import dev.hybridsearch.v1.Document;
import dev.hybridsearch.v1.Hit;
import dev.hybridsearch.v1.MetadataType;
import dev.hybridsearch.v1.RetrievalMode;
import dev.hybridsearch.v1.SearchRequest;
import io.grpc.Status;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** Documents' metadata conversion; the last test runs against a live server (HYBRIDSEARCH_ADDR). */
class DocumentsTest {
  private static final ZoneOffset PLUS_TWO = ZoneOffset.ofHours(2);

  @Test
  void instantsBecomeUtcRfc3339AtAnyDepth() throws TextFormat.ParseException {
    Map<String, Object> metadata = new LinkedHashMap<>();
    metadata.put("published", OffsetDateTime.of(2020, 1, 31, 14, 0, 0, 0, PLUS_TWO));
    metadata.put("events", List.of(Map.of("at", Instant.parse("2021-05-01T08:30:00.250Z")),
        Map.of("at", ZonedDateTime.of(2021, 7, 1, 12, 0, 0, 1_000, ZoneId.of("Europe/Paris")))));
    metadata.put("n", 1);
    metadata.put("none", null);
    metadata.put("tags", Arrays.asList("a", true, 2.5));
    Struct expected = TextFormat.parse("""
        fields { key: "published" value { string_value: "2020-01-31T12:00:00Z" } }
        fields { key: "events" value { list_value {
          values { struct_value { fields { key: "at" value { string_value: "2021-05-01T08:30:00.250Z" } } } }
          values { struct_value { fields { key: "at" value { string_value: "2021-07-01T10:00:00.000001Z" } } } }
        } } }
        fields { key: "n" value { number_value: 1 } }
        fields { key: "none" value { null_value: NULL_VALUE } }
        fields { key: "tags" value { list_value {
          values { string_value: "a" } values { bool_value: true } values { number_value: 2.5 } } } }
        """, Struct.class);
    Document doc = Documents.of("d", "t", "x", metadata);
    assertEquals(expected, doc.getMetadata());
    assertEquals("d", doc.getId());
    assertEquals(Document.newBuilder().setId("bare").build(), Documents.of("bare", "", "", null));
  }

  @Test
  void valuesThatAreNotInstantsThrowNamingDocumentAndPath() {
    for (Object notAnInstant : List.of(LocalDateTime.of(2020, 1, 31, 12, 0), LocalDate.of(2020, 1, 31))) {
      Map<String, Object> metadata = Map.of("events", List.of(Map.of("at", 1), Map.of("at", notAnInstant)));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> Documents.of("doc-9", "", "", metadata));
      assertTrue(e.getMessage().startsWith("document \"doc-9\": metadata field \"events[1].at\": a "
          + notAnInstant.getClass().getSimpleName() + " is not an instant"), e.getMessage());
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Documents.metadata("doc-1", Map.of("price", new java.math.BigDecimal("1.5"))));
    assertTrue(e.getMessage().startsWith("document \"doc-1\": metadata field \"price\": a BigDecimal is not a JSON value"),
        e.getMessage());
  }

  /** An instant in a declared datetime field is found by a datetime range filter. */
  @Test
  void instantMetadataIsFilteredAsADatetime() throws Exception {
    String addr = CollectionsFilterTest.setting("HYBRIDSEARCH_ADDR");
    assumeTrue(!addr.isEmpty(), "HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh to start a server");
    String name = "java-dates-" + UUID.randomUUID().toString().substring(0, 8);
    try (HybridSearchClient base = HybridSearchClient.newBuilder(addr).timeout(Duration.ofSeconds(10)).build()) {
      base.createCollection(name, CollectionConfig.builder().field("published", MetadataType.METADATA_TYPE_DATETIME).build());
      try {
        HybridSearchClient dated = base.withCollection(name);
        List<Document> docs = List.of(
            Documents.of("old", "", "solar wind", Map.of("published", Instant.parse("2019-06-01T00:00:00Z"))),
            // 01:00 at +02:00 is 2019-12-31T23:00Z: before the bound once converted.
            Documents.of("edge", "", "solar wind", Map.of("published", OffsetDateTime.of(2020, 1, 1, 1, 0, 0, 0, PLUS_TWO))),
            Documents.of("new", "", "solar wind", Map.of("published", OffsetDateTime.of(2020, 1, 31, 14, 0, 0, 0, PLUS_TWO))));
        HybridSearchClient.UpsertResult upserted = dated.upsertDocuments(docs);
        assertEquals(3, upserted.acceptedCount(), upserted.toString());
        List<String> found = dated.search(SearchRequest.newBuilder()
                .setQuery("solar")
                .setMode(RetrievalMode.RETRIEVAL_MODE_SPARSE)
                .setFilter(where(range("published", gte(Instant.parse("2020-01-01T00:00:00Z")))))
                .build())
            .getHitsList().stream().map(Hit::getId).toList();
        assertEquals(List.of("new"), found);
        assertEquals("2020-01-31T12:00:00Z",
            dated.getDocument("new").getMetadata().getFieldsMap().get("published").getStringValue());
      } finally {
        try {
          base.deleteCollection(name);
        } catch (HybridSearchException e) {
          if (e.code() != Status.Code.NOT_FOUND) {
            throw e;
          }
        }
      }
    }
  }
}
