package dev.hybridsearch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridsearch.v1.CollectionInfo;
import dev.hybridsearch.v1.Hit;
import dev.hybridsearch.v1.RetrievalMode;
import dev.hybridsearch.v1.SearchRequest;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * Live: {@code CollectionConfig.builder().shards(n)} makes a sharded collection, which is
 * filled and searched like any other. Needs a server with collections ({@code serve
 * --data-dir}, as scripts/clients_test.sh runs it).
 */
class ShardedCollectionTest {
  @Test
  void collectionCreatedWithTwoShardsReportsThemAndSearchesItsDocuments() throws Exception {
    String addr = CollectionsFilterTest.setting("HYBRIDSEARCH_ADDR");
    assumeTrue(!addr.isEmpty(), "HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh to start a server");
    String name = "java-shards-" + UUID.randomUUID().toString().substring(0, 8);
    try (HybridSearchClient base = HybridSearchClient.newBuilder(addr).timeout(Duration.ofSeconds(10)).build()) {
      CollectionInfo created = base.createCollection(name, CollectionConfig.builder().shards(2).build());
      try {
        assertEquals(2, created.getShardCount(), created.toString());
        assertEquals(0, created.getDocumentCount());
        assertEquals(2, base.getCollection(name).getShardCount());
        HybridSearchClient sharded = base.withCollection(name);
        HybridSearchClient.UpsertResult upserted = sharded.upsertDocuments(List.of(
            Documents.of("s1", "", "plasma physics of the solar wind", null),
            Documents.of("s2", "", "solar cells on roofs", null),
            Documents.of("s3", "", "the moon pulls the oceans", null),
            Documents.of("s4", "", "the solar eclipse of 1999", null)));
        assertEquals(4, upserted.acceptedCount(), upserted.toString());
        List<String> found = sharded.search(SearchRequest.newBuilder()
                .setQuery("solar")
                .setTopK(10)
                .setMode(RetrievalMode.RETRIEVAL_MODE_SPARSE)
                .build())
            .getHitsList().stream().map(Hit::getId).sorted().toList();
        assertEquals(List.of("s1", "s2", "s4"), found);
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
