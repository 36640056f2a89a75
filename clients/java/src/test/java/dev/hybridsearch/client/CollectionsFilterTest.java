package dev.hybridsearch.client;

import static dev.hybridsearch.client.Filters.atLeast;
import static dev.hybridsearch.client.Filters.exists;
import static dev.hybridsearch.client.Filters.gte;
import static dev.hybridsearch.client.Filters.isNull;
import static dev.hybridsearch.client.Filters.lt;
import static dev.hybridsearch.client.Filters.match;
import static dev.hybridsearch.client.Filters.not;
import static dev.hybridsearch.client.Filters.or;
import static dev.hybridsearch.client.Filters.range;
import static dev.hybridsearch.client.Filters.where;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.hybridsearch.client.HybridSearchClient.StreamResult;
import dev.hybridsearch.v1.CollectionInfo;
import dev.hybridsearch.v1.CollectionSchema;
import dev.hybridsearch.v1.Condition;
import dev.hybridsearch.v1.Document;
import dev.hybridsearch.v1.Exists;
import dev.hybridsearch.v1.Filter;
import dev.hybridsearch.v1.Highlight;
import dev.hybridsearch.v1.Hit;
import dev.hybridsearch.v1.Match;
import dev.hybridsearch.v1.MatchValue;
import dev.hybridsearch.v1.MetadataType;
import dev.hybridsearch.v1.Range;
import dev.hybridsearch.v1.RangeBound;
import dev.hybridsearch.v1.RetrievalMode;
import dev.hybridsearch.v1.SearchRequest;
import dev.hybridsearch.v1.SearchResponse;
import dev.hybridsearch.v1.SearchStreamRequest;
import dev.hybridsearch.v1.StoredField;
import dev.hybridsearch.v1.TextSpan;
import io.grpc.Status;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Collections, filters, paging and highlights against a live server (HYBRIDSEARCH_ADDR). Uses
 * only the collection named by HYBRIDSEARCH_FILTER_COLLECTION (SciFact, dense MiniLM + BM25,
 * the synthetic metadata of server/hybridsearch/eval/synthetic_metadata.py) and collections it
 * creates.
 */
class CollectionsFilterTest {
  private static final RetrievalMode HYBRID = RetrievalMode.RETRIEVAL_MODE_HYBRID;
  private static final RetrievalMode SPARSE = RetrievalMode.RETRIEVAL_MODE_SPARSE;
  private static HybridSearchClient base;
  private static HybridSearchClient client; // scoped to the filter collection
  private static String collection;

  static String setting(String key) {
    String value = System.getProperty(key);
    if (value == null || value.isEmpty() || value.startsWith("${")) {
      value = System.getenv(key);
    }
    return value == null ? "" : value;
  }

  @BeforeAll
  static void connect() throws Exception {
    String addr = setting("HYBRIDSEARCH_ADDR");
    collection = setting("HYBRIDSEARCH_FILTER_COLLECTION");
    if (!addr.isEmpty() && !collection.isEmpty()) {
      base = HybridSearchClient.newBuilder(addr).timeout(Duration.ofSeconds(10)).bearerToken("test").build();
      client = base.withCollection(collection);
    }
  }

  /** Each test is skipped, naming the missing variable, unless both are set. */
  @BeforeEach
  void needsServer() {
    assumeTrue(!setting("HYBRIDSEARCH_ADDR").isEmpty(),
        "HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh to start a server");
    assumeTrue(!collection.isEmpty(),
        "HYBRIDSEARCH_FILTER_COLLECTION is not set: name a hybrid SciFact collection with synthetic metadata "
            + "(scripts/clients_test.sh sets it)");
  }

  @AfterAll
  static void close() throws Exception {
    if (base != null) {
      base.close();
    }
  }

  /** journal is nature or cell AND year >= 2010 AND NOT erratum exists. */
  private static Filter journalYearNoErratum() {
    return where(match("journal", "nature", "cell"), range("year", gte(2010)), not(exists("erratum")));
  }

  private static SearchRequest.Builder hybrid(String query, int topK) {
    return SearchRequest.newBuilder().setQuery(query).setTopK(topK).setMode(HYBRID);
  }

  private static List<String> ids(SearchResponse response) {
    return response.getHitsList().stream().map(Hit::getId).toList();
  }

  private static HybridSearchException fails(Status.Code code, Runnable call) {
    HybridSearchException e = assertThrows(HybridSearchException.class, call::run);
    assertEquals(code, e.code(), e.getMessage());
    return e;
  }

  @Test
  void filteredHybridSearch() {
    SearchResponse response = client.search(hybrid("cancer treatment", 10)
        .setFilter(journalYearNoErratum())
        .addReturnFields(StoredField.STORED_FIELD_METADATA)
        .build());
    assertEquals(10, response.getHitsCount());
    assertEquals(collection, response.getApplied().getCollection());
    assertEquals(HYBRID, response.getApplied().getMode());
    for (Hit hit : response.getHitsList()) {
      Map<String, Value> m = hit.getMetadata().getFieldsMap();
      assertTrue(Set.of("nature", "cell").contains(m.get("journal").getStringValue()), hit.getId() + ": " + m);
      assertTrue(m.get("year").getNumberValue() >= 2010, hit.getId() + ": " + m);
      assertTrue(!m.containsKey("erratum") || m.get("erratum").hasNullValue(), hit.getId() + ": " + m);
    }

    // The same filter as the generated message gives the same ranking.
    Filter raw = Filter.newBuilder()
        .addMust(Condition.newBuilder().setMatch(Match.newBuilder().setField("journal")
            .addAny(MatchValue.newBuilder().setKeyword("nature"))
            .addAny(MatchValue.newBuilder().setKeyword("cell"))))
        .addMust(Condition.newBuilder().setRange(Range.newBuilder().setField("year")
            .setGte(RangeBound.newBuilder().setInteger(2010))))
        .addMustNot(Condition.newBuilder().setExists(Exists.newBuilder().setField("erratum")))
        .build();
    assertEquals(ids(response), ids(client.search(hybrid("cancer treatment", 10).setFilter(raw).build())));
  }

  @Test
  void filterBuildersOnTheWire() {
    Instant since = Instant.parse("2012-01-01T00:00:00Z");
    SearchResponse response = client.search(hybrid("cell", 20)
        .addReturnFields(StoredField.STORED_FIELD_METADATA)
        .setFilter(where(
            range("impact", gte(2.5), lt(9.5)),
            range("published", gte(since)),
            or(match("open_access", true), match("year", 2020, 2021, 2022)),
            atLeast(1, match("topics", "oncology", "genetics", "immunology"), isNull("topics"))))
        .build());
    assertFalse(response.getHitsList().isEmpty());
    for (Hit hit : response.getHitsList()) {
      Map<String, Value> m = hit.getMetadata().getFieldsMap();
      double impact = m.get("impact").getNumberValue();
      Instant published = Instant.parse(m.get("published").getStringValue());
      double year = m.get("year").getNumberValue();
      boolean open = m.get("open_access").getBoolValue();
      List<Value> topics = m.containsKey("topics") ? m.get("topics").getListValue().getValuesList() : List.of();
      boolean topical = topics.isEmpty()
          || topics.stream().anyMatch(v -> Set.of("oncology", "genetics", "immunology").contains(v.getStringValue()));
      assertTrue(impact >= 2.5 && impact < 9.5, hit.getId() + ": " + m);
      assertFalse(published.isBefore(since), hit.getId() + ": " + m);
      assertTrue(open || (year >= 2020 && year <= 2022), hit.getId() + ": " + m);
      assertTrue(topical, hit.getId() + ": " + m);
    }
  }

  @Test
  void pagination() {
    int k = 5;
    SearchRequest.Builder request = hybrid("cancer treatment", 2 * k).setFilter(journalYearNoErratum());
    SearchResponse both = client.search(request.build());
    SearchResponse first = client.search(request.setTopK(k).setOffset(0).build());
    SearchResponse second = client.search(request.setTopK(k).setOffset(k).build());
    assertEquals(2 * k, both.getHitsCount());
    assertEquals(ids(both).subList(0, k), ids(first));
    assertEquals(ids(both).subList(k, 2 * k), ids(second));
    for (int i = 0; i < k; i++) {
      Hit hit = second.getHits(i);
      assertEquals(k + i + 1, hit.getRank());
      assertFalse(ids(first).contains(hit.getId()), hit.getId() + " on both pages");
    }
    assertEquals(k, second.getApplied().getOffset());
  }

  @Test
  void highlights() {
    int maxChars = 120;
    SearchResponse response = client.search(hybrid("cancer treatment", 10).setHighlight(Highlights.enabled(maxChars)).build());
    int marked = 0;
    for (Hit hit : response.getHitsList()) {
      for (Highlight h : hit.getHighlightsList()) {
        int length = h.getSnippet().codePointCount(0, h.getSnippet().length());
        assertTrue(length > 0 && length <= maxChars, hit.getId() + ": snippet of " + length + " characters");
        assertFalse(h.getMatchesList().isEmpty(), hit.getId() + ": highlight without matches");
        for (TextSpan span : h.getMatchesList()) {
          assertTrue(span.getStart() < span.getEnd() && span.getEnd() <= length, hit.getId() + ": span " + span);
        }
        for (String term : Highlights.matchedTerms(h)) {
          String lower = term.toLowerCase(Locale.ROOT);
          assertTrue(lower.startsWith("cancer") || lower.startsWith("treat"), hit.getId() + ": matched " + term);
        }
        marked++;
      }
    }
    assertTrue(marked > 0, "no hit has a highlight");
  }

  @Test
  void collectionOnBatchAndStream() {
    SearchRequest unnamed = hybrid("cancer", 3).setFilter(journalYearNoErratum()).build();
    SearchRequest named = hybrid("cancer", 3).setCollection(collection).build();
    for (SearchResponse response : client.batchSearch(List.of(unnamed, named))) {
      assertEquals(collection, response.getApplied().getCollection());
      assertEquals(3, response.getHitsCount());
    }
    List<SearchStreamRequest> requests =
        List.of(SearchStreamRequest.newBuilder().setRequestId("a").setSearch(unnamed).build());
    int answers = 0;
    try (ResultStream results = client.searchStream(requests)) {
      while (results.hasNext()) {
        StreamResult r = results.next();
        assertEquals(null, r.error());
        assertEquals(collection, r.response().getApplied().getCollection());
        answers++;
      }
    }
    assertEquals(1, answers);
  }

  @Test
  void badFilterNamesTheField() {
    HybridSearchException e = fails(Status.Code.INVALID_ARGUMENT, () -> client.search(hybrid("cancer", 10)
        .setFilter(where(range("year", gte(2010)), match("no_such_field", "x")))
        .build()));
    assertFalse(e.fieldViolations().isEmpty(), e.getMessage());
    for (HybridSearchException.FieldViolation v : e.fieldViolations()) {
      assertTrue(v.field().startsWith("filter."), v.field());
    }
  }

  private static Document doc(String id, Map<String, Value> metadata) {
    return Document.newBuilder()
        .setId(id)
        .setTitle("Boundary layer notes")
        .setText("boundary layer flow over a plate")
        .setMetadata(Struct.newBuilder().putAllFields(metadata))
        .build();
  }

  private static Value str(String s) {
    return Value.newBuilder().setStringValue(s).build();
  }

  private static Value num(double d) {
    return Value.newBuilder().setNumberValue(d).build();
  }

  @Test
  void collectionLifecycle() {
    String name = "java-test-" + UUID.randomUUID().toString().substring(0, 8);
    String aliasA = name + "-a";
    String aliasB = name + "-b";
    CollectionConfig config = CollectionConfig.builder()
        .field("tenant", MetadataType.METADATA_TYPE_KEYWORD)
        .field("year", MetadataType.METADATA_TYPE_INTEGER)
        .multiValuedField("tags", MetadataType.METADATA_TYPE_KEYWORD)
        .build();
    CollectionInfo created = base.createCollection(name, config);
    try {
      assertEquals(name, created.getName());
      assertEquals("", created.getEncoderModelId());
      assertEquals(0, created.getDocumentCount());
      fails(Status.Code.ALREADY_EXISTS, () -> base.createCollection(name, CollectionConfig.builder().build()));

      CollectionInfo got = base.getCollection(name);
      assertEquals(CollectionSchema.newBuilder().addAllFields(config.fields()).build(), got.getSchema());
      assertTrue(base.listCollections().stream().anyMatch(c -> c.getName().equals(name)));

      // Alias: set, then switch to another name in one atomic call.
      assertEquals(name, base.setAlias(aliasA, name).get(aliasA));
      Map<String, String> aliases = base.updateAliases(Aliases.add(aliasB, name), Aliases.remove(aliasA));
      assertFalse(aliases.containsKey(aliasA), aliases.toString());
      assertEquals(name, aliases.get(aliasB));
      CollectionInfo byAlias = base.getCollection(aliasB);
      assertEquals(name, byAlias.getName());
      assertEquals(List.of(aliasB), byAlias.getAliasesList());

      // Write and search through the alias.
      HybridSearchClient notes = base.withCollection(aliasB);
      List<Document> docs = new ArrayList<>();
      docs.add(doc("d1", Map.of("tenant", str("acme"), "year", num(2021),
          "tags", Value.newBuilder().setListValue(com.google.protobuf.ListValue.newBuilder().addValues(str("red")).addValues(str("blue"))).build())));
      docs.add(doc("d2", Map.of("tenant", str("acme"), "year", num(2015))));
      docs.add(doc("d3", Map.of("tenant", str("globex"), "year", num(2022))));
      assertEquals(3, notes.upsertDocuments(docs).acceptedCount());
      SearchResponse response = notes.search(SearchRequest.newBuilder()
          .setQuery("boundary layer")
          .setMode(SPARSE)
          .setFilter(where(match("tenant", "acme"), range("year", gte(2020))))
          .build());
      assertEquals(List.of("d1"), ids(response));
      assertEquals(name, response.getApplied().getCollection());
      assertEquals("globex", notes.getDocument("d3").getMetadata().getFieldsMap().get("tenant").getStringValue());
      assertEquals(3, notes.getIndexStats().getDocumentCount());

      assertEquals(List.of(aliasB), base.deleteCollection(name));
      fails(Status.Code.NOT_FOUND, () -> base.getCollection(name));
      fails(Status.Code.NOT_FOUND, () -> notes.search(SearchRequest.newBuilder().setQuery("boundary layer").setMode(SPARSE).build()));
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

  @Test
  void unknownCollectionIsNotFound() {
    String missing = "java-missing-" + UUID.randomUUID().toString().substring(0, 8);
    fails(Status.Code.NOT_FOUND, () -> base.getCollection(missing));
    fails(Status.Code.NOT_FOUND, () -> base.deleteCollection(missing));
    fails(Status.Code.NOT_FOUND, () -> base.search(SearchRequest.newBuilder().setQuery("cancer").setCollection(missing).build()));
    fails(Status.Code.NOT_FOUND, () -> base.withCollection(missing).getIndexStats());
  }
}
