package client_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/hybridsearch/hybridsearch/clients/go/client"
	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// Ids unique to this client, so the four clients' live tests never collide.
var liveIDs = []string{"go-live-1", "go-live-2"}

const marker = "golivemarker" // a word no sample document holds

// cleanIDs deletes the live ids before and after the test (deletes are idempotent).
func cleanIDs(t *testing.T, c *client.Client) []string {
	t.Helper()
	ids := append(slices.Clone(liveIDs), "go-live-3")
	if _, err := c.DeleteDocuments(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.DeleteDocuments(context.Background(), ids) })
	return ids
}

func hitIDs(t *testing.T, c *client.Client, q string) []string {
	t.Helper()
	resp, err := c.Search(context.Background(), &pb.SearchRequest{Query: q, TopK: 10, Mode: sparse})
	if err != nil {
		t.Fatal(err)
	}
	return ids(resp)
}

func stats(t *testing.T, c *client.Client) *pb.GetIndexStatsResponse {
	t.Helper()
	s, err := c.GetIndexStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIndexServiceRoundTrip(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	cleanIDs(t, c)
	before := stats(t, c)
	if !before.GetWritable() {
		t.Fatal("the test server must be writable")
	}
	first, err := client.NewDocument(liveIDs[0], "Go live document", marker+" boundary layer notes",
		map[string]any{"lang": "go", "n": 1, "tags": []any{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	second := &pb.Document{Id: liveIDs[1], Title: "Second", Text: "plain text"}

	// BatchSize 1: three messages on the stream; the blank id is rejected, not fatal.
	u, err := c.NewUpserter(ctx, client.UpsertOptions{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Add(first, second, &pb.Document{Id: "  "}); err != nil {
		t.Fatal(err)
	}
	resp, err := u.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAcceptedCount() != 2 || resp.GetReplacedCount() != 0 || resp.GetRejectedCount() != 1 {
		t.Fatalf("upsert = %v", resp)
	}
	if r := resp.GetRejected(); len(r) != 1 || r[0].GetPosition() != 2 || r[0].GetId() != "  " || r[0].GetReason() == "" {
		t.Errorf("rejected = %v", r)
	}
	if resp.GetGeneration() <= before.GetGeneration() {
		t.Errorf("generation %d did not advance past %d", resp.GetGeneration(), before.GetGeneration())
	}
	after := stats(t, c)
	if after.GetDocumentCount() != before.GetDocumentCount()+2 || after.GetGeneration() != resp.GetGeneration() {
		t.Errorf("stats after upsert = %v (before: %v)", after, before)
	}

	for _, want := range []*pb.Document{first, second} {
		got, err := c.GetDocument(ctx, want.GetId())
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("GetDocument(%s) = %v, want %v", want.GetId(), got, want)
		}
	}
	if got := hitIDs(t, c, marker); !slices.Equal(got, liveIDs[:1]) {
		t.Errorf("search %q = %v", marker, got)
	}

	replaced, err := c.UpsertDocuments(ctx, []*pb.Document{{Id: liveIDs[0], Text: "rewritten"}})
	if err != nil {
		t.Fatal(err)
	}
	if replaced.GetAcceptedCount() != 1 || replaced.GetReplacedCount() != 1 {
		t.Errorf("replace = %v", replaced)
	}
	if got := hitIDs(t, c, marker); len(got) != 0 {
		t.Errorf("search %q after the rewrite = %v", marker, got)
	}

	deleted, err := c.DeleteDocuments(ctx, append(slices.Clone(liveIDs), "go-live-missing"))
	if err != nil {
		t.Fatal(err)
	}
	if deleted.GetDeletedCount() != 2 || !slices.Equal(deleted.GetNotFoundIds(), []string{"go-live-missing"}) ||
		deleted.GetGeneration() <= replaced.GetGeneration() {
		t.Errorf("delete = %v", deleted)
	}
	if n := stats(t, c).GetDocumentCount(); n != before.GetDocumentCount() {
		t.Errorf("document count %d after delete, want %d", n, before.GetDocumentCount())
	}
	_, err = c.GetDocument(ctx, liveIDs[0])
	var e *client.Error
	if !errors.As(err, &e) || e.Code != codes.NotFound {
		t.Fatalf("GetDocument after delete = %v, want a NotFound *client.Error", err)
	}
}

func TestUpserterSendsReadyBatches(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	cleanIDs(t, c)
	u, err := c.NewUpserter(ctx, client.UpsertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Add(&pb.Document{Id: "go-live-3", Text: "loose"}); err != nil {
		t.Fatal(err)
	}
	if err := u.Send(&pb.UpsertDocumentsRequest{Documents: []*pb.Document{{Id: liveIDs[0]}, {Id: liveIDs[1]}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := u.Close()
	if err != nil || resp.GetAcceptedCount() != 3 {
		t.Fatalf("Close = %v, %v", resp, err)
	}
	if err := u.Add(&pb.Document{Id: "late"}); err == nil {
		t.Error("Add after Close succeeded")
	}
}

func TestUpserterReportsTheCallFailure(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	u, err := c.NewUpserter(ctx, client.UpsertOptions{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	err = u.Add(&pb.Document{Id: "go-live-never"})
	if err == nil {
		_, err = u.Close()
	}
	var e *client.Error
	if !errors.As(err, &e) || e.Code != codes.Canceled {
		t.Fatalf("err = %v, want a Canceled *client.Error", err)
	}
}

func TestIndexCallsMapErrors(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	_, err := c.GetDocument(ctx, " ")
	var e *client.Error
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument || !slices.Equal(fields(e), []string{"id"}) {
		t.Errorf("GetDocument(blank) = %v", err)
	}
	_, err = c.DeleteDocuments(ctx, nil)
	if !errors.As(err, &e) || !slices.Equal(fields(e), []string{"ids"}) {
		t.Errorf("DeleteDocuments(nil) = %v", err)
	}
	if _, err := client.NewDocument("x", "", "", map[string]any{"bad": make(chan int)}); err == nil {
		t.Error("NewDocument accepted a channel in metadata")
	}
}

// A stream that fails part-way (here: its second message names another collection) is an
// *Error carrying the server's response so far: the first message applied, its rejection.
func TestUpserterFailurePartWayCarriesThePartialResponse(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	cleanIDs(t, c)
	before := stats(t, c)
	u, err := c.NewUpserter(ctx, client.UpsertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	applied := &pb.UpsertDocumentsRequest{Documents: []*pb.Document{{Id: "go-live-3", Text: "applied"}, {Id: "  "}}}
	refused := &pb.UpsertDocumentsRequest{Documents: []*pb.Document{{Id: liveIDs[0]}}, Collection: "go-live-elsewhere"}
	err = u.Send(applied)
	if err == nil {
		err = u.Send(refused)
	}
	if err == nil {
		_, err = u.Close()
	}
	var e *client.Error
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument || !slices.Equal(fields(e), []string{"collection"}) {
		t.Fatalf("err = %v, want an InvalidArgument *client.Error on collection", err)
	}
	partial := e.PartialUpsert
	if partial == nil {
		t.Fatalf("err %v carries no partial response", err)
	}
	if partial.GetAppliedMessages() != 1 || partial.GetAcceptedCount() != 1 || partial.GetReplacedCount() != 0 ||
		partial.GetRejectedCount() != 1 || partial.GetGeneration() <= before.GetGeneration() {
		t.Errorf("partial response = %v (generation before: %d)", partial, before.GetGeneration())
	}
	if r := partial.GetRejected(); len(r) != 1 || r[0].GetPosition() != 1 || r[0].GetId() != "  " || r[0].GetReason() == "" {
		t.Errorf("partial rejected = %v", r)
	}
	if _, err := c.GetDocument(ctx, "go-live-3"); err != nil {
		t.Errorf("the applied message's document: %v", err)
	}
	_, err = c.GetDocument(ctx, liveIDs[0])
	if !errors.As(err, &e) || e.Code != codes.NotFound || e.PartialUpsert != nil {
		t.Errorf("the refused message's document: %v (want NotFound, no partial response)", err)
	}
}
