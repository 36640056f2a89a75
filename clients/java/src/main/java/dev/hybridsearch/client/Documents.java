package dev.hybridsearch.client;

import com.google.protobuf.ListValue;
import com.google.protobuf.NullValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.hybridsearch.v1.Document;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZonedDateTime;
import java.time.temporal.TemporalAccessor;
import java.util.Map;

/**
 * Builds {@link Document} messages whose metadata {@link Struct} comes from plain Java values:
 * {@code String}, {@code Boolean}, {@code Integer}/{@code Long}/{@code Short}/{@code Byte}/
 * {@code Double}/{@code Float} (a Struct number is a double), {@code null}, {@code Map<String, ?>},
 * {@code Iterable<?>}, a ready protobuf {@link Value}, and instants. At any depth an {@link
 * Instant}, {@link OffsetDateTime} or {@link ZonedDateTime} becomes its RFC 3339 text in UTC
 * ({@code 2020-01-31T12:00:00Z}, the form a datetime field stores and filters; the offset is not
 * kept). A date or time without a zone ({@code LocalDateTime}, {@code LocalDate}...) is not an
 * instant: it throws {@link IllegalArgumentException} naming the document and field path rather
 * than guessing a zone, as does any other value.
 */
public final class Documents {
  private Documents() {}

  /** A document with {@code metadata} (may be null: none) converted as the class describes. */
  public static Document of(String id, String title, String text, Map<String, ?> metadata) {
    Document.Builder document = Document.newBuilder().setId(id).setTitle(title).setText(text);
    if (metadata != null) {
      document.setMetadata(metadata(id, metadata));
    }
    return document.build();
  }

  /** {@code metadata} as a Struct; {@code documentId} only names the document in errors. */
  public static Struct metadata(String documentId, Map<String, ?> metadata) {
    return struct(documentId, "", metadata);
  }

  private static Struct struct(String documentId, String prefix, Map<?, ?> values) {
    Struct.Builder struct = Struct.newBuilder();
    for (Map.Entry<?, ?> entry : values.entrySet()) {
      if (!(entry.getKey() instanceof String key)) {
        throw invalid(documentId, prefix + entry.getKey(), "a key must be a String");
      }
      struct.putFields(key, value(documentId, prefix + key, entry.getValue()));
    }
    return struct.build();
  }

  private static Value value(String documentId, String path, Object value) {
    Value.Builder out = Value.newBuilder();
    if (value == null) {
      return out.setNullValue(NullValue.NULL_VALUE).build();
    } else if (value instanceof Value ready) {
      return ready;
    } else if (value instanceof String s) {
      return out.setStringValue(s).build();
    } else if (value instanceof Boolean b) {
      return out.setBoolValue(b).build();
    } else if (value instanceof Integer || value instanceof Long || value instanceof Short
        || value instanceof Byte || value instanceof Double || value instanceof Float) {
      return out.setNumberValue(((Number) value).doubleValue()).build();
    } else if (value instanceof TemporalAccessor time) {
      return out.setStringValue(Instants.rfc3339(instant(documentId, path, time))).build();
    } else if (value instanceof Map<?, ?> map) {
      return out.setStructValue(struct(documentId, path + ".", map)).build();
    } else if (value instanceof Iterable<?> items) {
      ListValue.Builder list = ListValue.newBuilder();
      int i = 0;
      for (Object item : items) {
        list.addValues(value(documentId, path + "[" + i++ + "]", item));
      }
      return out.setListValue(list).build();
    }
    throw invalid(documentId, path, "a " + value.getClass().getSimpleName()
        + " is not a JSON value (String, Boolean, Integer, Long, Double, null, Map, Iterable) or an instant");
  }

  private static Instant instant(String documentId, String path, TemporalAccessor time) {
    if (time instanceof Instant instant) {
      return instant;
    } else if (time instanceof OffsetDateTime offset) {
      return offset.toInstant();
    } else if (time instanceof ZonedDateTime zoned) {
      return zoned.toInstant();
    }
    throw invalid(documentId, path, "a " + time.getClass().getSimpleName()
        + " is not an instant: it lacks a date, a time or a zone, and no zone is guessed"
        + " (use an Instant, OffsetDateTime or ZonedDateTime)");
  }

  private static IllegalArgumentException invalid(String documentId, String path, String reason) {
    return new IllegalArgumentException("document \"" + documentId + "\": metadata field \"" + path + "\": " + reason);
  }
}
