// Command example runs one sparse query against a hybridsearch server.
//
//	go run ./cmd/example -addr 127.0.0.1:50051 -query "what is bm25"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/hybridsearch/hybridsearch/clients/go/client"
	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "server address")
	query := flag.String("query", "boundary layer", "query text")
	topK := flag.Uint("top-k", 5, "hits to return")
	flag.Parse()

	c, err := client.New(*addr, client.Options{Timeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	resp, err := c.Search(context.Background(), &pb.SearchRequest{
		Query: *query, TopK: uint32(*topK), Mode: pb.RetrievalMode_RETRIEVAL_MODE_SPARSE,
	})
	var e *client.Error
	if errors.As(err, &e) {
		log.Fatalf("%s (field violations: %+v)", e.Message, e.FieldViolations)
	} else if err != nil {
		log.Fatal(err)
	}
	for _, h := range resp.GetHits() {
		fmt.Printf("%2d  %-20s %.4f\n", h.GetRank(), h.GetId(), h.GetScore())
	}
}
