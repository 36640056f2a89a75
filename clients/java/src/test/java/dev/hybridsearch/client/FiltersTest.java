package dev.hybridsearch.client;

import static dev.hybridsearch.client.Filters.and;
import static dev.hybridsearch.client.Filters.atLeast;
import static dev.hybridsearch.client.Filters.exists;
import static dev.hybridsearch.client.Filters.gt;
import static dev.hybridsearch.client.Filters.gte;
import static dev.hybridsearch.client.Filters.hasId;
import static dev.hybridsearch.client.Filters.isNull;
import static dev.hybridsearch.client.Filters.lt;
import static dev.hybridsearch.client.Filters.lte;
import static dev.hybridsearch.client.Filters.match;
import static dev.hybridsearch.client.Filters.nested;
import static dev.hybridsearch.client.Filters.not;
import static dev.hybridsearch.client.Filters.or;
import static dev.hybridsearch.client.Filters.range;
import static dev.hybridsearch.client.Filters.where;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.TextFormat;
import com.google.protobuf.TextFormat.ParseException;
import dev.hybridsearch.v1.AliasAction;
import dev.hybridsearch.v1.Condition;
import dev.hybridsearch.v1.DenseIndexKind;
import dev.hybridsearch.v1.Filter;
import dev.hybridsearch.v1.Highlight;
import dev.hybridsearch.v1.MetadataType;
import dev.hybridsearch.v1.StoredField;
import dev.hybridsearch.v1.TextSpan;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The builders' messages; no server needed. */
class FiltersTest {
  private static Condition condition(String text) throws ParseException {
    return TextFormat.parse(text, Condition.class);
  }

  @Test
  void readableFilterMakesTheMessage() throws Exception {
    Filter filter = where(match("journal", "nature", "cell"), range("year", gte(2015)), not(exists("erratum")));
    Filter want = TextFormat.parse("""
        must { match { field: "journal" any { keyword: "nature" } any { keyword: "cell" } } }
        must { range { field: "year" gte { integer: 2015 } } }
        must { filter { must_not { exists { field: "erratum" } } } }
        """, Filter.class);
    assertEquals(want, filter);
  }

  @Test
  void typedValues() throws Exception {
    assertEquals(condition("match { field: 'year' any { integer: 2019 } any { integer: 2020 } }"), match("year", 2019, 2020));
    assertEquals(condition("match { field: 'open_access' any { boolean: true } }"), match("open_access", true));
    assertEquals(condition("range { field: 'impact' gt { number: 2.5 } lte { number: 9 } }"), range("impact", gt(2.5), lte(9.0)));
    assertEquals(condition("range { field: 'year' gte { integer: 2010 } lt { integer: 2020 } }"), range("year", gte(2010), lt(2020L)));
    assertEquals(condition("range { field: 'published' gte { datetime { seconds: 1580472000 } } }"),
        range("published", gte(Instant.parse("2020-01-31T12:00:00Z"))));
    assertEquals(condition("is_null { field: 'erratum' }"), isNull("erratum"));
    assertEquals(condition("has_id { ids: 'a' ids: 'b' }"), hasId("a", "b"));
    assertEquals(condition("filter { should { exists { field: 'a' } } should { exists { field: 'b' } } min_should_match: 1 }"),
        or(exists("a"), exists("b")));
    assertEquals(
        condition("filter { should { exists { field: 'a' } } should { exists { field: 'b' } } should { exists { field: 'c' } } min_should_match: 2 }"),
        atLeast(2, exists("a"), exists("b"), exists("c")));
    assertEquals(condition("filter { must { exists { field: 'a' } } must { is_null { field: 'b' } } }"), and(exists("a"), isNull("b")));
    assertEquals(condition("filter { must_not { exists { field: 'a' } } }"), nested(Filter.newBuilder().addMustNot(exists("a")).build()));
  }

  @Test
  void highlightHelpersCountCodePoints() {
    Highlight h = Highlight.newBuilder()
        .setField(StoredField.STORED_FIELD_TEXT)
        .setSnippet("\uD835\uDD38 cancer: treated cancers") // a supplementary character first
        .addMatches(TextSpan.newBuilder().setStart(2).setEnd(8))
        .addMatches(TextSpan.newBuilder().setStart(18).setEnd(25))
        .build();
    assertEquals(List.of("cancer", "cancers"), Highlights.matchedTerms(h));
    assertEquals("\uD835\uDD38 [cancer]: treated [cancers]", Highlights.mark(h, "[", "]"));
    assertTrue(Highlights.enabled().getEnabled());
    assertTrue(!Highlights.enabled().hasMaxChars());
    assertEquals(80, Highlights.enabled(80).getMaxChars());
  }

  @Test
  void collectionConfigAndAliases() {
    CollectionConfig config = CollectionConfig.builder()
        .field("year", MetadataType.METADATA_TYPE_INTEGER)
        .multiValuedField("tags", MetadataType.METADATA_TYPE_KEYWORD)
        .model(CollectionConfig.DEFAULT_MODEL)
        .denseIndex(DenseIndexKind.DENSE_INDEX_KIND_HNSW)
        .shards(3)
        .build();
    var request = config.toRequest("papers");
    assertEquals("papers", request.getName());
    assertEquals("default", request.getModel());
    assertEquals(DenseIndexKind.DENSE_INDEX_KIND_HNSW, request.getDenseIndex());
    assertEquals(3, request.getShards());
    assertEquals(0, CollectionConfig.builder().build().toRequest("x").getShards());
    IllegalArgumentException negative =
        assertThrows(IllegalArgumentException.class, () -> CollectionConfig.builder().shards(-1));
    assertEquals("shards must be >= 0 (got -1)", negative.getMessage());
    assertEquals(2, request.getSchema().getFieldsCount());
    assertTrue(request.getSchema().getFields(1).getMultiValued());
    assertTrue(!CollectionConfig.builder().build().toRequest("x").hasSchema());
    AliasAction add = Aliases.add("papers", "papers-v2");
    assertEquals("papers-v2", add.getAdd().getCollection());
    assertEquals("old", Aliases.remove("old").getRemove().getAlias());
  }
}
