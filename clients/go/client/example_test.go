package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hybridsearch/hybridsearch/clients/go/client"
	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// Compiled by `go test` (no Output comment, so not run): the README shows the same code.

func ExampleClient_SearchStream() {
	c, err := client.New("127.0.0.1:50051", client.Options{Timeout: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	reqs := []*pb.SearchStreamRequest{
		{RequestId: "q1", Search: &pb.SearchRequest{Query: "boundary layer", Mode: pb.RetrievalMode_RETRIEVAL_MODE_SPARSE}},
		{RequestId: "q2", Search: &pb.SearchRequest{Query: "shock wave", Mode: pb.RetrievalMode_RETRIEVAL_MODE_SPARSE}},
	}
	stream, err := c.SearchStream(context.Background(), slices.Values(reqs))
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close() // releases the call if the loop stops early
	for r, err := range stream.All() {
		if err != nil { // the stream failed (deadline, cancellation, shutdown)
			log.Fatal(err)
		}
		if r.Err != nil { // this request failed; the others go on
			fmt.Println(r.RequestID, r.Err.Code, r.Err.FieldViolations)
			continue
		}
		fmt.Println(r.RequestID, len(r.Response.GetHits()))
	}
}

func ExampleClient_NewUpserter() {
	c, err := client.New("127.0.0.1:50051", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	u, err := c.NewUpserter(ctx, client.UpsertOptions{BatchSize: 500})
	if err != nil {
		log.Fatal(err)
	}
	for i := range 10_000 { // sent as 20 batches, each one atomic commit
		doc, err := client.NewDocument(fmt.Sprintf("doc-%d", i), "Title", "Body text", map[string]any{"n": i})
		if err != nil {
			log.Fatal(err)
		}
		if err := u.Add(doc); err != nil {
			log.Fatal(err) // the call failed; the batches sent before stay committed
		}
	}
	resp, err := u.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetAcceptedCount(), resp.GetReplacedCount(), resp.GetGeneration())
	for _, r := range resp.GetRejected() {
		fmt.Println("rejected", r.GetPosition(), r.GetId(), r.GetReason())
	}
}

func ExampleClient_GetDocument() {
	c, err := client.New("127.0.0.1:50051", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if _, err := c.UpsertDocuments(ctx, []*pb.Document{{Id: "doc-1", Title: "Hello", Text: "world"}}); err != nil {
		log.Fatal(err)
	}
	doc, err := c.GetDocument(ctx, "doc-1")
	if err != nil {
		log.Fatal(err)
	}
	stats, err := c.GetIndexStats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(doc.GetTitle(), stats.GetDocumentCount(), stats.GetGeneration())

	deleted, err := c.DeleteDocuments(ctx, []string{"doc-1", "missing"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(deleted.GetDeletedCount(), deleted.GetNotFoundIds()) // 1 [missing]

	_, err = c.GetDocument(ctx, "doc-1")
	var e *client.Error
	if errors.As(err, &e) && e.Code == codes.NotFound {
		fmt.Println("gone")
	}
}
