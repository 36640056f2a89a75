package dev.hybridsearch.client;

import com.google.protobuf.Timestamp;
import java.time.Instant;
import java.time.format.DateTimeFormatter;

/**
 * The one conversion of a {@link Instant} into the server's datetime: a filter bound travels as
 * a {@link Timestamp}, a metadata value as that Timestamp's RFC 3339 text (UTC, {@code Z}, 0, 3,
 * 6 or 9 fraction digits: {@code 2020-01-31T12:00:00Z}).
 */
final class Instants {
  private Instants() {}

  /** {@code value} as a datetime filter bound. */
  static Timestamp timestamp(Instant value) {
    return Timestamp.newBuilder().setSeconds(value.getEpochSecond()).setNanos(value.getNano()).build();
  }

  /** {@code value} as metadata text, e.g. {@code 2020-01-31T12:00:00Z}. */
  static String rfc3339(Instant value) {
    return DateTimeFormatter.ISO_INSTANT.format(value);
  }
}
