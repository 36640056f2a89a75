package client_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hybridsearch/hybridsearch/clients/go/client"
	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// These tests need no server: they check the messages the builders make.

func TestFilterBuildersMakeTheMessage(t *testing.T) {
	got := client.Where(
		client.Match("journal", "nature", "cell"),
		client.Range("year", client.Gte(2015)),
		client.Not(client.Exists("erratum")),
	)
	want := &pb.Filter{Must: []*pb.Condition{
		{Condition: &pb.Condition_Match{Match: &pb.Match{Field: "journal", Any: []*pb.MatchValue{
			{Value: &pb.MatchValue_Keyword{Keyword: "nature"}},
			{Value: &pb.MatchValue_Keyword{Keyword: "cell"}},
		}}}},
		{Condition: &pb.Condition_Range{Range: &pb.Range{Field: "year", Gte: &pb.RangeBound{Value: &pb.RangeBound_Integer{Integer: 2015}}}}},
		{Condition: &pb.Condition_Filter{Filter: &pb.Filter{MustNot: []*pb.Condition{
			{Condition: &pb.Condition_Exists{Exists: &pb.Exists{Field: "erratum"}}},
		}}}},
	}}
	if !proto.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", protojson.Format(got), protojson.Format(want))
	}
}

func TestFilterBuildersTypedValues(t *testing.T) {
	day := time.Date(2020, 1, 31, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		got  *pb.Condition
		want string // protojson of the condition
	}{
		{"int match", client.Match("year", 2019, int64(2020)), `{"match":{"field":"year","any":[{"integer":"2019"},{"integer":"2020"}]}}`},
		{"bool match", client.Match("open_access", true), `{"match":{"field":"open_access","any":[{"boolean":true}]}}`},
		{"float range", client.Range("impact", client.Gt(2.5), client.Lte(9.0)), `{"range":{"field":"impact","gt":{"number":2.5},"lte":{"number":9}}}`},
		{"int range", client.Range("year", client.Gte(2010), client.Lt(int64(2020))), `{"range":{"field":"year","gte":{"integer":"2010"},"lt":{"integer":"2020"}}}`},
		{"datetime range", client.Range("published", client.Gte(day)), `{"range":{"field":"published","gte":{"datetime":"2020-01-31T12:00:00Z"}}}`},
		{"is null", client.IsNull("erratum"), `{"isNull":{"field":"erratum"}}`},
		{"has id", client.HasID("a", "b"), `{"hasId":{"ids":["a","b"]}}`},
		{"or", client.Or(client.Exists("a"), client.Exists("b")), `{"filter":{"should":[{"exists":{"field":"a"}},{"exists":{"field":"b"}}],"minShouldMatch":1}}`},
		{"at least", client.AtLeast(2, client.Exists("a"), client.Exists("b"), client.Exists("c")), `{"filter":{"should":[{"exists":{"field":"a"}},{"exists":{"field":"b"}},{"exists":{"field":"c"}}],"minShouldMatch":2}}`},
		{"and", client.And(client.Exists("a"), client.IsNull("b")), `{"filter":{"must":[{"exists":{"field":"a"}},{"isNull":{"field":"b"}}]}}`},
		{"nested raw", client.Nested(&pb.Filter{MustNot: []*pb.Condition{client.Exists("a")}}), `{"filter":{"mustNot":[{"exists":{"field":"a"}}]}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := &pb.Condition{}
			if err := protojson.Unmarshal([]byte(tc.want), want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tc.got, want) {
				t.Fatalf("got %s, want %s", protojson.Format(tc.got), tc.want)
			}
		})
	}
	if got := client.Range("published", client.Lt(day)).GetRange().GetLt().GetDatetime(); !proto.Equal(got, timestamppb.New(day)) {
		t.Errorf("datetime bound %v", got)
	}
}

func TestHighlightHelpers(t *testing.T) {
	h := &pb.Highlight{
		Field:   pb.StoredField_STORED_FIELD_TEXT,
		Snippet: "Über cancer: treated cancers",
		Matches: []*pb.TextSpan{{Start: 5, End: 11}, {Start: 21, End: 28}},
	}
	if got := client.MatchedTerms(h); !slices.Equal(got, []string{"cancer", "cancers"}) {
		t.Errorf("MatchedTerms = %q", got)
	}
	if got := client.MarkMatches(h, "[", "]"); got != "Über [cancer]: treated [cancers]" {
		t.Errorf("MarkMatches = %q", got)
	}
	if o := client.Highlights(0); !o.GetEnabled() || o.MaxChars != nil {
		t.Errorf("Highlights(0) = %v", o)
	}
	if o := client.Highlights(80); !o.GetEnabled() || o.GetMaxChars() != 80 {
		t.Errorf("Highlights(80) = %v", o)
	}
}

func TestCollectionHelpers(t *testing.T) {
	f := client.MultiField("topics", client.Keyword)
	if f.GetName() != "topics" || f.GetType() != pb.MetadataType_METADATA_TYPE_KEYWORD || !f.GetMultiValued() {
		t.Errorf("MultiField = %v", f)
	}
	if f := client.Field("year", client.Integer); f.GetMultiValued() || f.GetType() != pb.MetadataType_METADATA_TYPE_INTEGER {
		t.Errorf("Field = %v", f)
	}
	if a := client.AddAliasAction("papers", "papers-v2").GetAdd(); a.GetAlias() != "papers" || a.GetCollection() != "papers-v2" {
		t.Errorf("AddAliasAction = %v", a)
	}
	if r := client.RemoveAliasAction("old").GetRemove(); r.GetAlias() != "old" {
		t.Errorf("RemoveAliasAction = %v", r)
	}
	c, err := client.New("127.0.0.1:1", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := c.WithCollection("papers"); d.Collection() != "papers" || c.Collection() != "" {
		t.Errorf("WithCollection: %q, original %q", d.Collection(), c.Collection())
	}
}
