package dev.hybridsearch.client;

import dev.hybridsearch.v1.Condition;
import dev.hybridsearch.v1.Exists;
import dev.hybridsearch.v1.Filter;
import dev.hybridsearch.v1.HasId;
import dev.hybridsearch.v1.IsNull;
import dev.hybridsearch.v1.Match;
import dev.hybridsearch.v1.MatchValue;
import dev.hybridsearch.v1.Range;
import dev.hybridsearch.v1.RangeBound;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;

/**
 * Builders of metadata filters ({@code SearchRequest.filter}); they make the generated
 * {@link Filter} and {@link Condition} messages, so a hand-built {@code Filter} is accepted
 * wherever these are. With {@code import static dev.hybridsearch.client.Filters.*}, "journal is
 * nature or cell AND year >= 2015 AND erratum does not exist" reads
 *
 * <pre>{@code
 * Filter filter = where(
 *     match("journal", "nature", "cell"),
 *     range("year", gte(2015)),
 *     not(exists("erratum")));
 * }</pre>
 *
 * <p>Conditions name metadata fields declared in the collection's schema, with values of the
 * declared type; anything else is answered {@code INVALID_ARGUMENT} with a field violation on
 * its path (e.g. {@code filter.must[1].range.gte}).
 */
public final class Filters {
  private Filters() {}

  /** One end of a {@link #range}: made by {@link #gt}, {@link #gte}, {@link #lt} or {@link #lte}. */
  public static final class Bound {
    private enum Kind { GT, GTE, LT, LTE }

    private final Kind kind;
    private final RangeBound value;

    private Bound(Kind kind, RangeBound value) {
      this.kind = kind;
      this.value = value;
    }
  }

  /** A filter matching the documents that match every condition (its {@code must}); none: all. */
  public static Filter where(Condition... conditions) {
    return Filter.newBuilder().addAllMust(Arrays.asList(conditions)).build();
  }

  /** A condition that holds when every one of {@code conditions} holds (a nested must). */
  public static Condition and(Condition... conditions) {
    return nested(Filter.newBuilder().addAllMust(Arrays.asList(conditions)).build());
  }

  /** A condition that holds when at least one of {@code conditions} holds (a nested should). */
  public static Condition or(Condition... conditions) {
    return atLeast(1, conditions);
  }

  /**
   * A condition that holds when at least {@code n} of {@code conditions} hold (a nested should
   * with {@code min_should_match}; {@code n} at most the number of conditions).
   */
  public static Condition atLeast(int n, Condition... conditions) {
    return nested(Filter.newBuilder().addAllShould(Arrays.asList(conditions)).setMinShouldMatch(n).build());
  }

  /** A condition that holds when none of {@code conditions} holds (a nested must_not). */
  public static Condition not(Condition... conditions) {
    return nested(Filter.newBuilder().addAllMustNot(Arrays.asList(conditions)).build());
  }

  /** A filter (e.g. one built with {@link Filter#newBuilder()}) as a condition of another. */
  public static Condition nested(Filter filter) {
    return Condition.newBuilder().setFilter(filter).build();
  }

  /** A keyword field has any of {@code values} (exact, case-sensitive). */
  public static Condition match(String field, String... values) {
    Match.Builder match = Match.newBuilder().setField(field);
    for (String v : values) {
      match.addAny(MatchValue.newBuilder().setKeyword(v));
    }
    return Condition.newBuilder().setMatch(match).build();
  }

  /** An integer field has any of {@code values}. */
  public static Condition match(String field, long... values) {
    Match.Builder match = Match.newBuilder().setField(field);
    for (long v : values) {
      match.addAny(MatchValue.newBuilder().setInteger(v));
    }
    return Condition.newBuilder().setMatch(match).build();
  }

  /** A boolean field has {@code value}. */
  public static Condition match(String field, boolean value) {
    return Condition.newBuilder()
        .setMatch(Match.newBuilder().setField(field).addAny(MatchValue.newBuilder().setBoolean(value)))
        .build();
  }

  /** A keyword field has any of {@code values}. */
  public static Condition matchAny(String field, List<String> values) {
    return match(field, values.toArray(String[]::new));
  }

  /**
   * An integer, float or datetime field lies within {@code bounds} (unset ends are open; at
   * least one is needed), e.g. {@code range("year", gte(2010), lt(2020))},
   * {@code range("impact", gt(7.5))}, {@code range("published", gte(Instant.parse("2020-01-01T00:00:00Z")))}.
   * A multi-valued field matches when any of its values does.
   */
  public static Condition range(String field, Bound... bounds) {
    Range.Builder range = Range.newBuilder().setField(field);
    for (Bound b : bounds) {
      switch (b.kind) {
        case GT -> range.setGt(b.value);
        case GTE -> range.setGte(b.value);
        case LT -> range.setLt(b.value);
        case LTE -> range.setLte(b.value);
      }
    }
    return Condition.newBuilder().setRange(range).build();
  }

  /** Greater than an integer. */
  public static Bound gt(long value) {
    return new Bound(Bound.Kind.GT, integer(value));
  }

  /** Greater than a number (float field, or an integer field). */
  public static Bound gt(double value) {
    return new Bound(Bound.Kind.GT, number(value));
  }

  /** After an instant (datetime field). */
  public static Bound gt(Instant value) {
    return new Bound(Bound.Kind.GT, datetime(value));
  }

  /** Greater than or equal to an integer. */
  public static Bound gte(long value) {
    return new Bound(Bound.Kind.GTE, integer(value));
  }

  /** Greater than or equal to a number. */
  public static Bound gte(double value) {
    return new Bound(Bound.Kind.GTE, number(value));
  }

  /** At or after an instant. */
  public static Bound gte(Instant value) {
    return new Bound(Bound.Kind.GTE, datetime(value));
  }

  /** Less than an integer. */
  public static Bound lt(long value) {
    return new Bound(Bound.Kind.LT, integer(value));
  }

  /** Less than a number. */
  public static Bound lt(double value) {
    return new Bound(Bound.Kind.LT, number(value));
  }

  /** Before an instant. */
  public static Bound lt(Instant value) {
    return new Bound(Bound.Kind.LT, datetime(value));
  }

  /** Less than or equal to an integer. */
  public static Bound lte(long value) {
    return new Bound(Bound.Kind.LTE, integer(value));
  }

  /** Less than or equal to a number. */
  public static Bound lte(double value) {
    return new Bound(Bound.Kind.LTE, number(value));
  }

  /** At or before an instant. */
  public static Bound lte(Instant value) {
    return new Bound(Bound.Kind.LTE, datetime(value));
  }

  /** The field has no value (absent, or an empty list). */
  public static Condition isNull(String field) {
    return Condition.newBuilder().setIsNull(IsNull.newBuilder().setField(field)).build();
  }

  /** The field has at least one value. */
  public static Condition exists(String field) {
    return Condition.newBuilder().setExists(Exists.newBuilder().setField(field)).build();
  }

  /** The document's external id is one of {@code ids} (no schema needed). */
  public static Condition hasId(String... ids) {
    return Condition.newBuilder().setHasId(HasId.newBuilder().addAllIds(Arrays.asList(ids))).build();
  }

  private static RangeBound integer(long value) {
    return RangeBound.newBuilder().setInteger(value).build();
  }

  private static RangeBound number(double value) {
    return RangeBound.newBuilder().setNumber(value).build();
  }

  private static RangeBound datetime(Instant value) {
    return RangeBound.newBuilder().setDatetime(Instants.timestamp(value)).build();
  }
}
