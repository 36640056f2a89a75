// A typed builder for hybridsearch.v1.Filter: metadata conditions combined with allOf (must),
// anyOf / atLeast (should) and not (must_not).
//
//   import { filters as f } from "@hybridsearch/client";
//   const flt = f.allOf(f.match("journal", "nature", "cell"), f.range("year", { gte: 2015 }), f.not(f.exists("erratum")));
//   await client.search("cancer treatment", { collection: "papers", filter: flt });
//
// Every helper returns a generated `Condition`, so builder output and hand-written messages
// mix freely. The server checks field names and value types against the collection's schema:
// an undeclared field or a value of another type is INVALID_ARGUMENT naming the field path
// (`filter.must[1].range.gte`).
import { Condition, type DeepPartial, Filter, type MatchValue, type RangeBound } from "./gen/hybridsearch/v1/filter.js";
import { validInstant } from "./instant.js";

/** A value to match: a string (keyword field), an integer (integer field) or a boolean. */
export type MatchValueLike = string | number | bigint | boolean;

/**
 * A range bound: a number (an integral one is sent as an integer bound, any other as a float
 * bound; integer and float fields accept both), a bigint (integer field) or a Date (datetime
 * field).
 */
export type Bound = number | bigint | Date;

export interface RangeBounds {
  gt?: Bound;
  gte?: Bound;
  lt?: Bound;
  lte?: Bound;
}

/** What a search's `filter` option accepts: a built condition or a (partial) Filter message. */
export type FilterLike = Condition | DeepPartial<Filter>;

function safeInteger(value: number | bigint, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || (typeof value === "bigint" && BigInt(n) !== value)) {
    throw new RangeError(`${what}: ${value} is not an integer within ±2^53`);
  }
  return n;
}

function matchValue(value: MatchValueLike): MatchValue {
  switch (typeof value) {
    case "string":
      return { keyword: value };
    case "boolean":
      return { boolean: value };
    case "number":
    case "bigint":
      return { integer: safeInteger(value, "match value") };
    default:
      throw new TypeError(`match values are strings, integers or booleans (got ${typeof value})`);
  }
}

/** `field` holds any of `values` (keyword, integer or boolean field; a multi-valued field
 * matches when any of its values is one of them). Keywords match exactly, case-sensitively. */
export function match(field: string, ...values: MatchValueLike[]): Condition {
  if (values.length === 0) throw new RangeError("match needs at least one value");
  return { match: { field, any: values.map(matchValue) } };
}

function bound(name: string, value: Bound | undefined): RangeBound | undefined {
  if (value === undefined) return undefined;
  if (value instanceof Date) return { datetime: validInstant(value, `range bound ${name}`) };
  if (typeof value === "bigint") return { integer: safeInteger(value, `range bound ${name}`) };
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`range bound ${name}: expected a finite number, a bigint or a Date (got ${String(value)})`);
  }
  return Number.isSafeInteger(value) ? { integer: value } : { number: value };
}

/** `field` lies in the range (integer, float or datetime field); unset bounds are open, at
 * least one is needed. A multi-valued field matches when any of its values lies in it. */
export function range(field: string, bounds: RangeBounds): Condition {
  const { gt, gte, lt, lte } = bounds;
  if (gt === undefined && gte === undefined && lt === undefined && lte === undefined) {
    throw new RangeError("range needs at least one of gt, gte, lt, lte");
  }
  return {
    range: { field, gt: bound("gt", gt), gte: bound("gte", gte), lt: bound("lt", lt), lte: bound("lte", lte) },
  };
}

/** `field` has no value (absent, null, or an empty list). */
export function isNull(field: string): Condition {
  return { isNull: { field } };
}

/** `field` has at least one value. */
export function exists(field: string): Condition {
  return { exists: { field } };
}

/** The document's id is one of `ids` (no schema needed). */
export function hasId(...ids: string[]): Condition {
  if (ids.length === 0) throw new RangeError("hasId needs at least one id");
  return { hasId: { ids } };
}

export interface WhereClauses {
  /** Conditions that must all match. */
  must?: Condition[];
  /** Conditions of which at least `minShouldMatch` (0 means 1) must match. */
  should?: Condition[];
  minShouldMatch?: number;
  /** Conditions none of which may match. */
  mustNot?: Condition[];
}

/** A nested boolean filter with all three lists. */
export function where(clauses: WhereClauses): Condition {
  const minShouldMatch = clauses.minShouldMatch ?? 0;
  if (!Number.isInteger(minShouldMatch) || minShouldMatch < 0) {
    throw new RangeError(`minShouldMatch must be an integer >= 0 (got ${minShouldMatch})`);
  }
  return {
    filter: Filter.fromPartial({
      must: clauses.must ?? [],
      should: clauses.should ?? [],
      minShouldMatch,
      mustNot: clauses.mustNot ?? [],
    }),
  };
}

/** Every condition matches. Nested `allOf` and `not` operands are merged into one flat filter:
 * `allOf(a, b, not(c))` is `{ must: [a, b], mustNot: [c] }`. */
export function allOf(...conditions: Condition[]): Condition {
  const must: Condition[] = [];
  const mustNot: Condition[] = [];
  for (const condition of conditions) {
    const nested = condition.filter;
    if (nested && nested.should.length === 0) {
      must.push(...nested.must);
      mustNot.push(...nested.mustNot);
    } else {
      must.push(condition);
    }
  }
  return where({ must, mustNot });
}

/** At least one condition matches (nested plain `anyOf` operands are merged). */
export function anyOf(...conditions: Condition[]): Condition {
  const should: Condition[] = [];
  for (const condition of conditions) {
    const nested = condition.filter;
    const plain =
      nested && nested.must.length === 0 && nested.mustNot.length === 0 && nested.should.length > 0 && nested.minShouldMatch <= 1;
    should.push(...(plain ? nested.should : [condition]));
  }
  return where({ should });
}

/** At least `n` of the conditions match (`should` with `min_should_match`). */
export function atLeast(n: number, ...conditions: Condition[]): Condition {
  return where({ should: conditions, minShouldMatch: n });
}

/** None of the conditions matches (`must_not`). */
export function not(...conditions: Condition[]): Condition {
  return where({ mustNot: conditions });
}

function isCondition(value: FilterLike): value is Condition {
  return ["filter", "match", "range", "isNull", "exists", "hasId"].some(
    (key) => (value as Record<string, unknown>)[key] !== undefined,
  );
}

/** The Filter message of a built condition (a nested filter as is, any other test as its one
 * `must`); a (partial) Filter passes through `Filter.fromPartial`. */
export function toFilter(value: FilterLike): Filter {
  if (!isCondition(value)) return Filter.fromPartial(value);
  if (value.filter) return Filter.fromPartial(value.filter);
  return Filter.fromPartial({ must: [value] });
}
