package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hybridsearch/hybridsearch/clients/go/client"
	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

const sparse = pb.RetrievalMode_RETRIEVAL_MODE_SPARSE

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// Words that occur in the bundled sample corpus, so BM25 returns hits.
var (
	query      = envOr("HYBRIDSEARCH_TEST_QUERY", "boundary layer")
	otherQuery = envOr("HYBRIDSEARCH_TEST_OTHER_QUERY", "supersonic flow")
)

func newClient(t *testing.T) *client.Client {
	t.Helper()
	addr := os.Getenv("HYBRIDSEARCH_ADDR")
	if addr == "" {
		t.Skip("HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh to start a server")
	}
	c, err := client.New(addr, client.Options{Timeout: 10 * time.Second, BearerToken: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func assertRanked(t *testing.T, resp *pb.SearchResponse, topK int) {
	t.Helper()
	hits := resp.GetHits()
	if len(hits) == 0 || len(hits) > topK {
		t.Fatalf("got %d hits, want 1..%d", len(hits), topK)
	}
	for i, h := range hits {
		if int(h.GetRank()) != i+1 {
			t.Errorf("hit %d has rank %d", i, h.GetRank())
		}
		if i > 0 && h.GetScore() > hits[i-1].GetScore() {
			t.Errorf("scores not descending at %d", i)
		}
	}
	if resp.GetApplied().GetMode() != sparse || int(resp.GetApplied().GetTopK()) != topK {
		t.Errorf("applied = %v", resp.GetApplied())
	}
}

func ids(resp *pb.SearchResponse) []string {
	out := make([]string, 0, len(resp.GetHits()))
	for _, h := range resp.GetHits() {
		out = append(out, h.GetId())
	}
	return out
}

func fields(e *client.Error) []string {
	out := []string{}
	for _, v := range e.FieldViolations {
		out = append(out, v.Field)
	}
	return out
}

func TestSearch(t *testing.T) {
	c := newClient(t)
	resp, err := c.Search(context.Background(), &pb.SearchRequest{Query: query, TopK: 3, Mode: sparse})
	if err != nil {
		t.Fatal(err)
	}
	assertRanked(t, resp, 3)
}

func TestBatchSearchKeepsOrder(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	queries := []string{query, otherQuery}
	reqs := []*pb.SearchRequest{}
	for _, q := range queries {
		reqs = append(reqs, &pb.SearchRequest{Query: q, TopK: 5, Mode: sparse})
	}
	resps, err := c.BatchSearch(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 2 {
		t.Fatalf("got %d responses", len(resps))
	}
	for i, r := range reqs {
		single, err := c.Search(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(ids(single), ",") != strings.Join(ids(resps[i]), ",") {
			t.Errorf("batch[%d] = %v, single = %v", i, ids(resps[i]), ids(single))
		}
	}
}

func TestSearchStream(t *testing.T) {
	c := newClient(t)
	stream, err := c.SearchStream(context.Background(), slices.Values([]*pb.SearchStreamRequest{
		{RequestId: "a", Search: &pb.SearchRequest{Query: query, TopK: 3, Mode: sparse}},
		{RequestId: "bad", Search: &pb.SearchRequest{Query: "  ", Mode: sparse}},
		{RequestId: "b", Search: &pb.SearchRequest{Query: otherQuery, TopK: 2, Mode: sparse}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	byID := map[string]client.StreamResult{}
	got := []string{}
	for r, err := range stream.All() {
		if err != nil {
			t.Fatal(err)
		}
		byID[r.RequestID] = r
		got = append(got, r.RequestID)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "a,b,bad" {
		t.Fatalf("request ids = %v", got)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after the end = %v, want io.EOF", err)
	}
	assertRanked(t, byID["a"].Response, 3)
	assertRanked(t, byID["b"].Response, 2)
	bad := byID["bad"].Err
	if bad == nil || bad.Code != codes.InvalidArgument {
		t.Fatalf("bad = %+v", byID["bad"])
	}
	if f := fields(bad); len(f) != 1 || strings.TrimPrefix(f[0], "search.") != "query" {
		t.Errorf("field violations = %v", f)
	}
}

// channelSeq yields the requests sent on ch until it is closed or ctx is done.
func channelSeq(ctx context.Context, ch <-chan *pb.SearchStreamRequest) iter.Seq[*pb.SearchStreamRequest] {
	return func(yield func(*pb.SearchStreamRequest) bool) {
		for {
			select {
			case r, ok := <-ch:
				if !ok || !yield(r) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
}

func streamReq(id, q string) *pb.SearchStreamRequest {
	return &pb.SearchStreamRequest{RequestId: id, Search: &pb.SearchRequest{Query: q, TopK: 1, Mode: sparse}}
}

// The second request is only sent after the first answer was read: a stream that buffered
// requests or answers would block here.
func TestSearchStreamIsLazy(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reqs := make(chan *pb.SearchStreamRequest)
	stream, err := c.SearchStream(ctx, channelSeq(ctx, reqs))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	for _, id := range []string{"first", "second"} {
		reqs <- streamReq(id, query)
		r, err := stream.Recv()
		if err != nil || r.RequestID != id || r.Response == nil {
			t.Fatalf("Recv = %+v, %v; want the answer to %q", r, err, id)
		}
	}
	close(reqs)
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the requests ended = %v, want io.EOF", err)
	}
}

// An answer arrives, then the stream's deadline passes while it is held open: Recv returns
// the answer, then the typed error (and keeps returning it).
func TestSearchStreamErrorMidStream(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	reqs := make(chan *pb.SearchStreamRequest, 1)
	reqs <- streamReq("only", query)
	// The sequence waits on its own context, not the deadline one, so that it does not end
	// (and half-close the stream) when the deadline passes.
	hold, release := context.WithCancel(context.Background())
	defer release()
	stream, err := c.SearchStream(ctx, channelSeq(hold, reqs))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if r, err := stream.Recv(); err != nil || r.RequestID != "only" {
		t.Fatalf("first Recv = %+v, %v", r, err)
	}
	for range 2 {
		_, err := stream.Recv()
		var e *client.Error
		if !errors.As(err, &e) || e.Code != codes.DeadlineExceeded {
			t.Fatalf("Recv = %v, want a DeadlineExceeded *client.Error", err)
		}
	}
}

// Close cancels the call: Recv reports Canceled and the sending goroutine stops taking
// requests from the sequence (yield returns false).
func TestSearchStreamCloseStopsSending(t *testing.T) {
	c := newClient(t)
	release := make(chan struct{})
	stopped := make(chan bool, 1)
	seq := func(yield func(*pb.SearchStreamRequest) bool) {
		yield(streamReq("first", query))
		<-release
		stopped <- !yield(streamReq("second", query))
	}
	stream, err := c.SearchStream(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	close(release)
	select {
	case ok := <-stopped:
		if !ok {
			t.Error("the sender kept taking requests after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sender did not return to the sequence after Close")
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("Recv after Close = %v, want Canceled", err)
	}
}

func TestInvalidArgumentFieldViolations(t *testing.T) {
	c := newClient(t)
	cases := []struct {
		name  string
		req   *pb.SearchRequest
		field string
	}{
		{"empty query", &pb.SearchRequest{Query: "", Mode: sparse}, "query"},
		{"top_k too large", &pb.SearchRequest{Query: query, TopK: 1001, Mode: sparse}, "top_k"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Search(context.Background(), tc.req)
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *client.Error", err)
			}
			if e.Code != codes.InvalidArgument || status.Code(err) != codes.InvalidArgument {
				t.Errorf("code = %v", e.Code)
			}
			if f := fields(e); len(f) != 1 || f[0] != tc.field || e.FieldViolations[0].Description == "" {
				t.Errorf("field violations = %+v, want %s", e.FieldViolations, tc.field)
			}
		})
	}
}

func TestBatchSearchNamesTheBadRequest(t *testing.T) {
	c := newClient(t)
	_, err := c.BatchSearch(context.Background(), []*pb.SearchRequest{
		{Query: query, Mode: sparse}, {Query: "", Mode: sparse},
	})
	var e *client.Error
	if !errors.As(err, &e) || strings.Join(fields(e), ",") != "requests[1].query" {
		t.Fatalf("err = %v", err)
	}
}

func TestContextDeadlineWins(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := c.Search(ctx, &pb.SearchRequest{Query: query, Mode: sparse})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

// A reply over gRPC's 4 MiB default (under the server's 16 MiB) is received.
func TestBatchSearchReceivesRepliesOver4MiB(t *testing.T) {
	c := newClient(t)
	reqs := make([]*pb.SearchRequest, 64)
	for i := range reqs {
		reqs[i] = &pb.SearchRequest{Query: query, TopK: 100, Mode: sparse,
			ReturnFields: []pb.StoredField{pb.StoredField_STORED_FIELD_TITLE, pb.StoredField_STORED_FIELD_TEXT}}
	}
	resps, err := c.BatchSearch(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, r := range resps {
		size += proto.Size(r)
	}
	if size <= 4<<20 {
		t.Fatalf("reply is %d bytes, want over 4 MiB", size)
	}
}

// After Close, Recv returns Canceled at once, not the answers already buffered.
func TestSearchStreamRecvAfterCloseIsCanceledAtOnce(t *testing.T) {
	c := newClient(t)
	reqs := make([]*pb.SearchStreamRequest, 50)
	for i := range reqs {
		reqs[i] = streamReq(fmt.Sprint(i), query)
	}
	stream, err := c.SearchStream(context.Background(), slices.Values(reqs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the other answers arrive and be buffered
	stream.Close()
	if r, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv after Close = %+v, %v; want Canceled", r, err)
	}
}

// status.Convert(err).Details() finds the BadRequest through the *client.Error wrapper.
func TestErrorKeepsStatusDetails(t *testing.T) {
	c := newClient(t)
	_, err := c.Search(context.Background(), &pb.SearchRequest{Query: "", Mode: sparse})
	var found []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				found = append(found, v.GetField())
			}
		}
	}
	if strings.Join(found, ",") != "query" {
		t.Fatalf("BadRequest fields via status.Convert = %v (err %v)", found, err)
	}
}
