package dev.hybridsearch.client;

import dev.hybridsearch.v1.CollectionSchema;
import dev.hybridsearch.v1.CreateCollectionRequest;
import dev.hybridsearch.v1.DenseIndexKind;
import dev.hybridsearch.v1.MetadataField;
import dev.hybridsearch.v1.MetadataType;
import java.util.ArrayList;
import java.util.List;

/**
 * What a new collection is: its filterable metadata fields, its encoder (none: BM25-only), how
 * its vectors are searched and its shards (none: one index directory). Immutable; made with
 * {@link #builder()}:
 *
 * <pre>{@code
 * CollectionConfig config = CollectionConfig.builder()
 *     .field("tenant", MetadataType.METADATA_TYPE_KEYWORD)
 *     .multiValuedField("tags", MetadataType.METADATA_TYPE_KEYWORD)
 *     .model(CollectionConfig.DEFAULT_MODEL)            // omit for BM25 only
 *     .denseIndex(DenseIndexKind.DENSE_INDEX_KIND_HNSW)
 *     .shards(4)                                         // omit for one index directory
 *     .build();
 * }</pre>
 */
public final class CollectionConfig {
  /** The model the server was started with. */
  public static final String DEFAULT_MODEL = "default";

  private final List<MetadataField> fields;
  private final String model;
  private final DenseIndexKind denseIndex;
  private final int shards;

  private CollectionConfig(Builder b) {
    fields = List.copyOf(b.fields);
    model = b.model;
    denseIndex = b.denseIndex;
    shards = b.shards;
  }

  /** A BM25-only collection without filterable fields, to add to. */
  public static Builder builder() {
    return new Builder();
  }

  /** The filterable metadata fields. */
  public List<MetadataField> fields() {
    return fields;
  }

  /** The encoder's model name; empty for BM25 only. */
  public String model() {
    return model;
  }

  /** How the vectors are searched. */
  public DenseIndexKind denseIndex() {
    return denseIndex;
  }

  /** The number of shards; 0 for one index directory. */
  public int shards() {
    return shards;
  }

  /** The CreateCollection request for a collection of this name. */
  public CreateCollectionRequest toRequest(String name) {
    CreateCollectionRequest.Builder request = CreateCollectionRequest.newBuilder()
        .setName(name)
        .setModel(model)
        .setDenseIndex(denseIndex)
        .setShards(shards);
    if (!fields.isEmpty()) {
      request.setSchema(CollectionSchema.newBuilder().addAllFields(fields));
    }
    return request.build();
  }

  /** Builds a {@link CollectionConfig}. */
  public static final class Builder {
    private final List<MetadataField> fields = new ArrayList<>();
    private String model = "";
    private DenseIndexKind denseIndex = DenseIndexKind.DENSE_INDEX_KIND_UNSPECIFIED;
    private int shards;

    private Builder() {}

    /** A single-valued filterable field (at most 64 fields, unique names). */
    public Builder field(String name, MetadataType type) {
      fields.add(MetadataField.newBuilder().setName(name).setType(type).build());
      return this;
    }

    /** A field whose value may be a JSON list of values of {@code type}. */
    public Builder multiValuedField(String name, MetadataType type) {
      fields.add(MetadataField.newBuilder().setName(name).setType(type).setMultiValued(true).build());
      return this;
    }

    /** A field as the generated message. */
    public Builder field(MetadataField field) {
      fields.add(field);
      return this;
    }

    /**
     * The encoder: {@link #DEFAULT_MODEL}, the name of a model directory under the server's
     * {@code --models-dir}, or empty (the default) for a BM25-only collection.
     */
    public Builder model(String value) {
      model = value == null ? "" : value;
      return this;
    }

    /** How the vectors are searched (unspecified: exact); ignored for BM25 only. */
    public Builder denseIndex(DenseIndexKind value) {
      denseIndex = value;
      return this;
    }

    /**
     * A sharded collection of {@code count} shards, in [1, 1024] (the server checks the upper
     * bound): its documents are spread over them by a hash of their ids, and the count is
     * fixed for its life. 0 (the default) keeps one index directory.
     *
     * @throws IllegalArgumentException when {@code count} is negative (the uint32 field would
     *     carry it as a count past 2^31)
     */
    public Builder shards(int count) {
      if (count < 0) {
        throw new IllegalArgumentException("shards must be >= 0 (got " + count + ")");
      }
      shards = count;
      return this;
    }

    public CollectionConfig build() {
      return new CollectionConfig(this);
    }
  }
}
