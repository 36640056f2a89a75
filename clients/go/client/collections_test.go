package client_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/hybridsearch/hybridsearch/clients/go/client"
	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// Live tests of collections, filters, paging and highlights. They use only the collection
// named by HYBRIDSEARCH_FILTER_COLLECTION (SciFact with dense MiniLM + BM25 and the synthetic
// metadata of server/hybridsearch/eval/synthetic_metadata.py) and collections they create.

const hybrid = pb.RetrievalMode_RETRIEVAL_MODE_HYBRID

var metadataField = []pb.StoredField{pb.StoredField_STORED_FIELD_METADATA}

// filterClient is a client scoped to the filter collection (its name is the second result).
func filterClient(t *testing.T) (*client.Client, string) {
	t.Helper()
	c := newClient(t)
	name := os.Getenv("HYBRIDSEARCH_FILTER_COLLECTION")
	if name == "" {
		t.Skip("HYBRIDSEARCH_FILTER_COLLECTION is not set: name a hybrid SciFact collection with " +
			"synthetic metadata (scripts/clients_test.sh sets it)")
	}
	return c.WithCollection(name), name
}

func asError(t *testing.T, err error, code codes.Code) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	return e
}

// journalYearNoErratum is: journal is nature or cell AND year >= 2010 AND NOT erratum exists.
func journalYearNoErratum() *pb.Filter {
	return client.Where(
		client.Match("journal", "nature", "cell"),
		client.Range("year", client.Gte(2010)),
		client.Not(client.Exists("erratum")),
	)
}

func TestFilteredHybridSearch(t *testing.T) {
	c, name := filterClient(t)
	ctx := context.Background()
	resp, err := c.Search(ctx, &pb.SearchRequest{
		Query: "cancer treatment", TopK: 10, Mode: hybrid,
		Filter: journalYearNoErratum(), ReturnFields: metadataField,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetHits()) != 10 {
		t.Fatalf("got %d hits, want 10", len(resp.GetHits()))
	}
	if a := resp.GetApplied(); a.GetCollection() != name || a.GetMode() != hybrid {
		t.Errorf("applied = %v", a)
	}
	for _, h := range resp.GetHits() {
		m := h.GetMetadata().AsMap()
		if j := m["journal"]; j != "nature" && j != "cell" {
			t.Errorf("%s: journal %v", h.GetId(), j)
		}
		if y, ok := m["year"].(float64); !ok || y < 2010 {
			t.Errorf("%s: year %v", h.GetId(), m["year"])
		}
		if e, ok := m["erratum"]; ok && e != nil {
			t.Errorf("%s: erratum %v", h.GetId(), e)
		}
	}

	// The same filter written as the generated message gives the same ranking.
	raw := &pb.Filter{
		Must: []*pb.Condition{
			{Condition: &pb.Condition_Match{Match: &pb.Match{Field: "journal", Any: []*pb.MatchValue{
				{Value: &pb.MatchValue_Keyword{Keyword: "nature"}}, {Value: &pb.MatchValue_Keyword{Keyword: "cell"}},
			}}}},
			{Condition: &pb.Condition_Range{Range: &pb.Range{Field: "year", Gte: &pb.RangeBound{Value: &pb.RangeBound_Integer{Integer: 2010}}}}},
		},
		MustNot: []*pb.Condition{{Condition: &pb.Condition_Exists{Exists: &pb.Exists{Field: "erratum"}}}},
	}
	again, err := c.Search(ctx, &pb.SearchRequest{Query: "cancer treatment", TopK: 10, Mode: hybrid, Filter: raw})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(again), ids(resp)) {
		t.Errorf("raw filter ranking %v, builder ranking %v", ids(again), ids(resp))
	}
}

func TestFilterBuildersOnTheWire(t *testing.T) {
	c, _ := filterClient(t)
	since := time.Date(2012, 1, 1, 0, 0, 0, 0, time.UTC)
	resp, err := c.Search(context.Background(), &pb.SearchRequest{
		Query: "cell", TopK: 20, Mode: hybrid, ReturnFields: metadataField,
		Filter: client.Where(
			client.Range("impact", client.Gte(2.5), client.Lt(9.5)),
			client.Range("published", client.Gte(since)),
			client.Or(client.Match("open_access", true), client.Match("year", 2020, 2021, 2022)),
			client.AtLeast(1, client.Match("topics", "oncology", "genetics", "immunology"), client.IsNull("topics")),
		),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetHits()) == 0 {
		t.Fatal("no hits")
	}
	for _, h := range resp.GetHits() {
		m := h.GetMetadata().AsMap()
		impact, _ := m["impact"].(float64)
		published, _ := m["published"].(string)
		at, err := time.Parse(time.RFC3339, published)
		year, _ := m["year"].(float64)
		open, _ := m["open_access"].(bool)
		topics, _ := m["topics"].([]any)
		topical := len(topics) == 0 || slices.ContainsFunc(topics, func(v any) bool {
			return v == "oncology" || v == "genetics" || v == "immunology"
		})
		if impact < 2.5 || impact >= 9.5 || err != nil || at.Before(since) || (!open && (year < 2020 || year > 2022)) || !topical {
			t.Errorf("%s does not match: %v", h.GetId(), m)
		}
	}
}

func TestPagination(t *testing.T) {
	c, _ := filterClient(t)
	ctx := context.Background()
	const k = 5
	page := func(offset, topK uint32) *pb.SearchResponse {
		t.Helper()
		resp, err := c.Search(ctx, &pb.SearchRequest{
			Query: "cancer treatment", Mode: hybrid, Filter: journalYearNoErratum(), Offset: offset, TopK: topK,
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	both, first, second := page(0, 2*k), page(0, k), page(k, k)
	if len(both.GetHits()) != 2*k {
		t.Fatalf("got %d hits, want %d", len(both.GetHits()), 2*k)
	}
	if !slices.Equal(ids(first), ids(both)[:k]) || !slices.Equal(ids(second), ids(both)[k:]) {
		t.Fatalf("pages %v + %v, want %v", ids(first), ids(second), ids(both))
	}
	for i, h := range second.GetHits() {
		if h.GetRank() != uint32(k+i+1) {
			t.Errorf("page 2 hit %d has rank %d, want %d", i, h.GetRank(), k+i+1)
		}
		if slices.Contains(ids(first), h.GetId()) {
			t.Errorf("%s on both pages", h.GetId())
		}
	}
	if second.GetApplied().GetOffset() != k {
		t.Errorf("applied offset %d", second.GetApplied().GetOffset())
	}
}

func TestHighlights(t *testing.T) {
	c, _ := filterClient(t)
	const maxChars = 120
	resp, err := c.Search(context.Background(), &pb.SearchRequest{
		Query: "cancer treatment", TopK: 10, Mode: hybrid, Highlight: client.Highlights(maxChars),
	})
	if err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, h := range resp.GetHits() {
		for _, hl := range h.GetHighlights() {
			n := utf8.RuneCountInString(hl.GetSnippet())
			if n == 0 || n > maxChars {
				t.Errorf("%s: snippet of %d characters: %q", h.GetId(), n, hl.GetSnippet())
			}
			if len(hl.GetMatches()) == 0 {
				t.Errorf("%s: highlight without matches", h.GetId())
			}
			for _, m := range hl.GetMatches() {
				if m.GetStart() >= m.GetEnd() || int(m.GetEnd()) > n {
					t.Errorf("%s: span %v outside a snippet of %d characters", h.GetId(), m, n)
				}
			}
			for _, term := range client.MatchedTerms(hl) {
				lower := strings.ToLower(term)
				if !strings.HasPrefix(lower, "cancer") && !strings.HasPrefix(lower, "treat") {
					t.Errorf("%s: matched %q, not a query word", h.GetId(), term)
				}
			}
			marked++
		}
	}
	if marked == 0 {
		t.Fatal("no hit has a highlight")
	}
}

func TestCollectionOnBatchAndStream(t *testing.T) {
	c, name := filterClient(t)
	ctx := context.Background()
	reqs := []*pb.SearchRequest{
		{Query: "cancer", TopK: 3, Mode: hybrid, Filter: journalYearNoErratum()},
		{Query: "cancer", TopK: 3, Mode: hybrid, Collection: name}, // named explicitly
	}
	resps, err := c.BatchSearch(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resps {
		if r.GetApplied().GetCollection() != name || len(r.GetHits()) != 3 {
			t.Errorf("response %d: %d hits on %q", i, len(r.GetHits()), r.GetApplied().GetCollection())
		}
	}
	if reqs[0].GetCollection() != "" {
		t.Error("BatchSearch changed the caller's request")
	}
	stream, err := c.SearchStream(ctx, slices.Values([]*pb.SearchStreamRequest{
		{RequestId: "a", Search: &pb.SearchRequest{Query: "cancer", TopK: 3, Mode: hybrid, Filter: journalYearNoErratum()}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	got := 0
	for r, err := range stream.All() {
		if err != nil {
			t.Fatal(err)
		}
		if r.Err != nil || r.Response.GetApplied().GetCollection() != name {
			t.Errorf("stream answer %+v", r)
		}
		got++
	}
	if got != 1 {
		t.Errorf("%d stream answers", got)
	}
}

func TestBadFilterNamesTheField(t *testing.T) {
	c, _ := filterClient(t)
	_, err := c.Search(context.Background(), &pb.SearchRequest{
		Query: "cancer", Mode: hybrid,
		Filter: client.Where(client.Range("year", client.Gte(2010)), client.Match("no_such_field", "x")),
	})
	e := asError(t, err, codes.InvalidArgument)
	if len(e.FieldViolations) == 0 {
		t.Fatalf("no field violations: %v", e)
	}
	for _, v := range e.FieldViolations {
		if !strings.HasPrefix(v.Field, "filter.") {
			t.Errorf("violation on %q, want a filter.* path", v.Field)
		}
	}
}

func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

func TestCollectionLifecycle(t *testing.T) {
	base, _ := filterClient(t) // only to skip like the other new tests; the calls below name their collection
	ctx := context.Background()
	name := uniqueName(t, "go-test-")
	aliasA, aliasB := name+"-a", name+"-b"
	fields := []*pb.MetadataField{
		client.Field("tenant", client.Keyword),
		client.Field("year", client.Integer),
		client.MultiField("tags", client.Keyword),
	}

	info, err := base.CreateCollection(ctx, name, client.CollectionConfig{Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := base.DeleteCollection(context.Background(), name); err != nil {
			var e *client.Error
			if !errors.As(err, &e) || e.Code != codes.NotFound {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	if info.GetName() != name || info.GetEncoderModelId() != "" || info.GetDocumentCount() != 0 {
		t.Errorf("created %v", info)
	}

	_, err = base.CreateCollection(ctx, name, client.CollectionConfig{})
	asError(t, err, codes.AlreadyExists)

	got, err := base.GetCollection(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.GetSchema(), &pb.CollectionSchema{Fields: fields}) {
		t.Errorf("schema round trip: %v", got.GetSchema())
	}
	all, err := base.ListCollections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(all, func(i *pb.CollectionInfo) bool { return i.GetName() == name }) {
		t.Errorf("%s not listed", name)
	}

	// Alias: set, then switch to another name in one atomic call.
	if aliases, err := base.SetAlias(ctx, aliasA, name); err != nil || aliases[aliasA] != name {
		t.Fatalf("SetAlias: %v %v", aliases, err)
	}
	aliases, err := base.UpdateAliases(ctx, []*pb.AliasAction{
		client.AddAliasAction(aliasB, name),
		client.RemoveAliasAction(aliasA),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := aliases[aliasA]; ok || aliases[aliasB] != name {
		t.Errorf("aliases after the switch: %v", aliases)
	}
	if got, err := base.GetCollection(ctx, aliasB); err != nil || got.GetName() != name || !slices.Equal(got.GetAliases(), []string{aliasB}) {
		t.Errorf("GetCollection(alias) = %v, %v", got, err)
	}

	// Write and search through the alias.
	c := base.WithCollection(aliasB)
	docs := make([]*pb.Document, 0, 3)
	for i, m := range []map[string]any{
		{"tenant": "acme", "year": 2021, "tags": []any{"red", "blue"}},
		{"tenant": "acme", "year": 2015, "tags": []any{"green"}},
		{"tenant": "globex", "year": 2022},
	} {
		doc, err := client.NewDocument([]string{"d1", "d2", "d3"}[i], "Boundary layer notes", "boundary layer flow over a plate", m)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	up, err := c.UpsertDocuments(ctx, docs[:2])
	if err != nil || up.GetAcceptedCount() != 2 {
		t.Fatalf("upsert: %v %v", up, err)
	}
	u, err := base.NewUpserter(ctx, client.UpsertOptions{Collection: aliasB}) // overrides base's collection
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Add(docs[2]); err != nil {
		u.Abort()
		t.Fatal(err)
	}
	if up, err := u.Close(); err != nil || up.GetAcceptedCount() != 1 {
		t.Fatalf("upserter: %v %v", up, err)
	}
	resp, err := c.Search(ctx, &pb.SearchRequest{
		Query: "boundary layer", Mode: pb.RetrievalMode_RETRIEVAL_MODE_SPARSE,
		Filter: client.Where(client.Match("tenant", "acme"), client.Range("year", client.Gte(2020))),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(resp), []string{"d1"}) || resp.GetApplied().GetCollection() != name {
		t.Errorf("filtered search: %v on %q", ids(resp), resp.GetApplied().GetCollection())
	}
	if doc, err := c.GetDocument(ctx, "d3"); err != nil || doc.GetMetadata().AsMap()["tenant"] != "globex" {
		t.Errorf("GetDocument via alias: %v %v", doc, err)
	}
	if st, err := c.GetIndexStats(ctx); err != nil || st.GetDocumentCount() != 3 {
		t.Errorf("GetIndexStats via alias: %v %v", st, err)
	}

	removed, err := base.DeleteCollection(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{aliasB}) {
		t.Errorf("removed aliases %v", removed)
	}
	_, err = base.GetCollection(ctx, name)
	asError(t, err, codes.NotFound)
	_, err = c.Search(ctx, &pb.SearchRequest{Query: "boundary layer", Mode: pb.RetrievalMode_RETRIEVAL_MODE_SPARSE})
	asError(t, err, codes.NotFound)
}

func TestUnknownCollectionIsNotFound(t *testing.T) {
	base, _ := filterClient(t)
	ctx := context.Background()
	missing := uniqueName(t, "go-missing-")
	_, err := base.GetCollection(ctx, missing)
	asError(t, err, codes.NotFound)
	_, err = base.DeleteCollection(ctx, missing)
	asError(t, err, codes.NotFound)
	_, err = base.Search(ctx, &pb.SearchRequest{Query: "cancer", Collection: missing})
	asError(t, err, codes.NotFound)
	_, err = base.WithCollection(missing).GetIndexStats(ctx)
	asError(t, err, codes.NotFound)
}
