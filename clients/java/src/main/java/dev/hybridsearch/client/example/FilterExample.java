package dev.hybridsearch.client.example;

import static dev.hybridsearch.client.Filters.exists;
import static dev.hybridsearch.client.Filters.gte;
import static dev.hybridsearch.client.Filters.match;
import static dev.hybridsearch.client.Filters.not;
import static dev.hybridsearch.client.Filters.range;
import static dev.hybridsearch.client.Filters.where;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.hybridsearch.client.Aliases;
import dev.hybridsearch.client.CollectionConfig;
import dev.hybridsearch.client.HybridSearchClient;
import dev.hybridsearch.client.HybridSearchException;
import dev.hybridsearch.client.Highlights;
import dev.hybridsearch.v1.CollectionInfo;
import dev.hybridsearch.v1.Document;
import dev.hybridsearch.v1.Highlight;
import dev.hybridsearch.v1.Hit;
import dev.hybridsearch.v1.MetadataType;
import dev.hybridsearch.v1.RetrievalMode;
import dev.hybridsearch.v1.SearchRequest;
import dev.hybridsearch.v1.SearchResponse;
import dev.hybridsearch.v1.StoredField;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Collections, a filtered hybrid search with paging and highlights, against a
 * {@code serve --data-dir} server with a SciFact collection carrying synthetic metadata:
 * {@code mvn -q compile exec:java -Dexec.mainClass=dev.hybridsearch.client.example.FilterExample
 * -Dexec.args="127.0.0.1:50051 scifact"}.
 */
public final class FilterExample {
  private FilterExample() {}

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "127.0.0.1:50051";
    String scifact = args.length > 1 ? args[1] : "scifact";
    try (HybridSearchClient client = HybridSearchClient.newBuilder(target).timeout(Duration.ofSeconds(10)).build()) {
      // A BM25-only collection with a schema, reached through an alias.
      CollectionInfo info = client.createCollection("notes-v1", CollectionConfig.builder()
          .field("tenant", MetadataType.METADATA_TYPE_KEYWORD)
          .field("year", MetadataType.METADATA_TYPE_INTEGER)
          .multiValuedField("tags", MetadataType.METADATA_TYPE_KEYWORD)
          // .model(CollectionConfig.DEFAULT_MODEL).denseIndex(DenseIndexKind.DENSE_INDEX_KIND_HNSW) for vectors
          // .shards(4) to spread its documents over 4 shards by id (omitted: one index directory)
          .build());
      try {
        System.out.println("created " + info.getName() + " fields: " + info.getSchema().getFieldsCount()
            + " BM25 only: " + info.getEncoderModelId().isEmpty());
        Map<String, String> aliases = client.updateAliases( // atomic: all or none
            Aliases.add("notes", "notes-v1"),
            Aliases.add("notes-next", "notes-v1"));
        System.out.println("aliases: " + aliases);
        HybridSearchClient notes = client.withCollection("notes"); // searches and index calls go to the alias
        Struct metadata = Struct.newBuilder()
            .putFields("tenant", Value.newBuilder().setStringValue("acme").build())
            .putFields("year", Value.newBuilder().setNumberValue(2021).build())
            .build();
        notes.upsertDocuments(List.of(
            Document.newBuilder().setId("n1").setTitle("Shock waves").setText("notes on shock waves").setMetadata(metadata).build()));
        for (CollectionInfo c : client.listCollections()) {
          System.out.printf("  %-10s docs=%-4d aliases=%s%n", c.getName(), c.getDocumentCount(), c.getAliasesList());
        }

        // journal is nature or cell AND year >= 2015 AND erratum does not exist; page 2, 3 a page.
        SearchResponse response = client.withCollection(scifact).search(SearchRequest.newBuilder()
            .setQuery("cancer treatment")
            .setMode(RetrievalMode.RETRIEVAL_MODE_HYBRID)
            .setTopK(3)
            .setOffset(3)
            .setFilter(where(match("journal", "nature", "cell"), range("year", gte(2015)), not(exists("erratum"))))
            .addReturnFields(StoredField.STORED_FIELD_METADATA)
            .setHighlight(Highlights.enabled(100))
            .build());
        for (Hit hit : response.getHitsList()) {
          Map<String, Value> m = hit.getMetadata().getFieldsMap();
          System.out.printf("%d %s %.4f %s %.0f%n", hit.getRank(), hit.getId(), hit.getScore(),
              m.get("journal").getStringValue(), m.get("year").getNumberValue());
          for (Highlight h : hit.getHighlightsList()) {
            System.out.println("    " + h.getField() + ": " + Highlights.mark(h, "[", "]"));
          }
        }
      } finally {
        client.deleteCollection("notes-v1");
      }
    } catch (HybridSearchException e) {
      // e.g. INVALID_ARGUMENT with a field violation on "filter.must[1].range.gte"
      System.err.println(e.code() + " " + e.serverMessage() + " " + e.fieldViolations());
      System.exit(1);
    }
  }
}
