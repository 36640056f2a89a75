package client

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// A time.Time is always an instant (its Location only chooses how it prints), so both places
// where one reaches the server normalise it to UTC: a datetime filter bound travels as a
// Timestamp, a datetime in document metadata as that Timestamp's RFC 3339 text.

// instantTimestamp is t as a datetime filter bound.
func instantTimestamp(t time.Time) *timestamppb.Timestamp {
	return timestamppb.New(t)
}

// instantRFC3339 is t as metadata text: RFC 3339 in UTC with "Z" and 0, 3, 6 or 9 fraction
// digits (the JSON form of its Timestamp), e.g. "2020-01-31T12:00:00Z".
func instantRFC3339(t time.Time) string {
	layout := "2006-01-02T15:04:05Z07:00"
	switch ns := t.Nanosecond(); {
	case ns == 0:
	case ns%1_000_000 == 0:
		layout = "2006-01-02T15:04:05.000Z07:00"
	case ns%1_000 == 0:
		layout = "2006-01-02T15:04:05.000000Z07:00"
	default:
		layout = "2006-01-02T15:04:05.000000000Z07:00"
	}
	return t.UTC().Format(layout)
}

// jsonMetadata is v with every time.Time in it (nested map[string]any and []any included) as
// instantRFC3339 text; it copies what it changes and leaves the caller's values alone.
func jsonMetadata(v any) any {
	switch x := v.(type) {
	case time.Time:
		return instantRFC3339(x)
	case *time.Time:
		if x != nil {
			return instantRFC3339(*x)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			out[k] = jsonMetadata(item)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = jsonMetadata(item)
		}
		return out
	}
	return v
}
