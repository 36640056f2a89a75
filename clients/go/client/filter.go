package client

import (
	"time"

	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// Filter builders. A SearchRequest's Filter is a *pb.Filter: build one with Where and the
// condition constructors below, or write the generated message yourself (both are the same
// type). "journal is nature or cell AND year >= 2015 AND erratum does not exist" reads
//
//	client.Where(
//		client.Match("journal", "nature", "cell"),
//		client.Range("year", client.Gte(2015)),
//		client.Not(client.Exists("erratum")),
//	)
//
// Conditions name metadata fields declared in the collection's schema, with values of the
// declared type; the server answers anything else with INVALID_ARGUMENT naming the field path
// (e.g. "filter.must[1].range.gte").

// MatchValue is a Go type Match accepts: string for keyword fields, an integer type for
// integer fields, bool for boolean fields.
type MatchValue interface {
	string | int | int32 | int64 | uint32 | bool
}

// RangeValue is a Go type a range bound accepts: an integer type for integer fields, a float
// for float (or integer) fields, a time.Time for datetime fields.
type RangeValue interface {
	int | int32 | int64 | uint32 | float32 | float64 | time.Time
}

// Where is a filter that matches the documents matching every condition (Filter.must). With
// no conditions it matches every document.
func Where(conds ...*pb.Condition) *pb.Filter {
	return &pb.Filter{Must: conds}
}

// And is a condition that holds when every one of conds holds (a nested filter's must).
func And(conds ...*pb.Condition) *pb.Condition {
	return Nested(&pb.Filter{Must: conds})
}

// Or is a condition that holds when at least one of conds holds (a nested filter's should).
func Or(conds ...*pb.Condition) *pb.Condition {
	return AtLeast(1, conds...)
}

// AtLeast is a condition that holds when at least n of conds hold (a nested filter's should
// with min_should_match n; n must not exceed len(conds)).
func AtLeast(n uint32, conds ...*pb.Condition) *pb.Condition {
	return Nested(&pb.Filter{Should: conds, MinShouldMatch: n})
}

// Not is a condition that holds when none of conds holds (a nested filter's must_not).
func Not(conds ...*pb.Condition) *pb.Condition {
	return Nested(&pb.Filter{MustNot: conds})
}

// Nested turns a filter, e.g. a hand-written *pb.Filter, into a condition of another one.
func Nested(f *pb.Filter) *pb.Condition {
	return &pb.Condition{Condition: &pb.Condition_Filter{Filter: f}}
}

// Match is a condition that holds when field has any of values: a keyword field (exact,
// case-sensitive) with strings, an integer field with integers, a boolean field with bools.
// A multi-valued field matches when any of its values is one of them.
func Match[T MatchValue](field string, values ...T) *pb.Condition {
	vals := make([]*pb.MatchValue, 0, len(values))
	for _, v := range values {
		vals = append(vals, matchValue(v))
	}
	return &pb.Condition{Condition: &pb.Condition_Match{Match: &pb.Match{Field: field, Any: vals}}}
}

func matchValue[T MatchValue](v T) *pb.MatchValue {
	switch x := any(v).(type) {
	case string:
		return &pb.MatchValue{Value: &pb.MatchValue_Keyword{Keyword: x}}
	case int:
		return &pb.MatchValue{Value: &pb.MatchValue_Integer{Integer: int64(x)}}
	case int32:
		return &pb.MatchValue{Value: &pb.MatchValue_Integer{Integer: int64(x)}}
	case int64:
		return &pb.MatchValue{Value: &pb.MatchValue_Integer{Integer: x}}
	case uint32:
		return &pb.MatchValue{Value: &pb.MatchValue_Integer{Integer: int64(x)}}
	case bool:
		return &pb.MatchValue{Value: &pb.MatchValue_Boolean{Boolean: x}}
	}
	panic("unreachable: MatchValue is a closed set of types")
}

// RangeBound sets one end of a Range; make it with Gt, Gte, Lt or Lte.
type RangeBound func(*pb.Range)

// Gt bounds a Range: the value is greater than v.
func Gt[T RangeValue](v T) RangeBound {
	return func(r *pb.Range) { r.Gt = rangeBound(v) }
}

// Gte bounds a Range: the value is greater than or equal to v.
func Gte[T RangeValue](v T) RangeBound {
	return func(r *pb.Range) { r.Gte = rangeBound(v) }
}

// Lt bounds a Range: the value is less than v.
func Lt[T RangeValue](v T) RangeBound {
	return func(r *pb.Range) { r.Lt = rangeBound(v) }
}

// Lte bounds a Range: the value is less than or equal to v.
func Lte[T RangeValue](v T) RangeBound {
	return func(r *pb.Range) { r.Lte = rangeBound(v) }
}

func rangeBound[T RangeValue](v T) *pb.RangeBound {
	switch x := any(v).(type) {
	case int:
		return &pb.RangeBound{Value: &pb.RangeBound_Integer{Integer: int64(x)}}
	case int32:
		return &pb.RangeBound{Value: &pb.RangeBound_Integer{Integer: int64(x)}}
	case int64:
		return &pb.RangeBound{Value: &pb.RangeBound_Integer{Integer: x}}
	case uint32:
		return &pb.RangeBound{Value: &pb.RangeBound_Integer{Integer: int64(x)}}
	case float32:
		return &pb.RangeBound{Value: &pb.RangeBound_Number{Number: float64(x)}}
	case float64:
		return &pb.RangeBound{Value: &pb.RangeBound_Number{Number: x}}
	case time.Time:
		return &pb.RangeBound{Value: &pb.RangeBound_Datetime{Datetime: instantTimestamp(x)}}
	}
	panic("unreachable: RangeValue is a closed set of types")
}

// Range is a condition that holds when field (integer, float or datetime) lies within the
// bounds; unset bounds are open and at least one is needed, e.g.
// Range("year", Gte(2010), Lt(2020)), Range("impact", Gt(7.5)),
// Range("published", Gte(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))). A multi-valued field
// matches when any of its values lies in the range.
func Range(field string, bounds ...RangeBound) *pb.Condition {
	r := &pb.Range{Field: field}
	for _, b := range bounds {
		b(r)
	}
	return &pb.Condition{Condition: &pb.Condition_Range{Range: r}}
}

// IsNull is a condition that holds when field has no value (absent, or an empty list).
func IsNull(field string) *pb.Condition {
	return &pb.Condition{Condition: &pb.Condition_IsNull{IsNull: &pb.IsNull{Field: field}}}
}

// Exists is a condition that holds when field has at least one value.
func Exists(field string) *pb.Condition {
	return &pb.Condition{Condition: &pb.Condition_Exists{Exists: &pb.Exists{Field: field}}}
}

// HasID is a condition that holds for the documents with one of these external ids (no
// schema needed).
func HasID(ids ...string) *pb.Condition {
	return &pb.Condition{Condition: &pb.Condition_HasId{HasId: &pb.HasId{Ids: ids}}}
}
