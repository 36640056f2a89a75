// Command filters shows collections, a filtered hybrid search with paging and highlights
// against a `serve --data-dir` server that has a SciFact collection with synthetic metadata:
//
//	go run ./cmd/filters -addr 127.0.0.1:50051 -collection scifact
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/hybridsearch/hybridsearch/clients/go/client"
	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "server address")
	collection := flag.String("collection", "scifact", "the SciFact collection to search")
	flag.Parse()

	c, err := client.New(*addr, client.Options{Timeout: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	// A BM25-only collection with a schema, reached through an alias.
	info, err := c.CreateCollection(ctx, "notes-v1", client.CollectionConfig{
		Fields: []*pb.MetadataField{
			client.Field("tenant", client.Keyword),
			client.Field("year", client.Integer),
			client.MultiField("tags", client.Keyword),
		},
		// Model: client.DefaultModel, DenseIndex: pb.DenseIndexKind_DENSE_INDEX_KIND_HNSW for vectors
		// Shards: 4 to spread its documents over 4 shards by id (0: one index directory)
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.DeleteCollection(ctx, "notes-v1")
	fmt.Println("created", info.GetName(), "fields:", len(info.GetSchema().GetFields()), "BM25 only:", info.GetEncoderModelId() == "")
	aliases, err := c.UpdateAliases(ctx, []*pb.AliasAction{ // atomic: all or none
		client.AddAliasAction("notes", "notes-v1"),
		client.AddAliasAction("notes-next", "notes-v1"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("aliases:", aliases)
	notes := c.WithCollection("notes") // searches and index calls go to the alias
	doc, _ := client.NewDocument("n1", "Shock waves", "notes on shock waves", map[string]any{"tenant": "acme", "year": 2021, "tags": []any{"flow"}})
	if _, err := notes.UpsertDocuments(ctx, []*pb.Document{doc}); err != nil {
		log.Fatal(err)
	}
	all, err := c.ListCollections(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, info := range all {
		fmt.Printf("  %-10s docs=%-4d aliases=%v\n", info.GetName(), info.GetDocumentCount(), info.GetAliases())
	}

	// journal is nature or cell AND year >= 2015 AND erratum does not exist; page 2, 3 a page.
	resp, err := c.WithCollection(*collection).Search(ctx, &pb.SearchRequest{
		Query: "cancer treatment", Mode: pb.RetrievalMode_RETRIEVAL_MODE_HYBRID,
		TopK: 3, Offset: 3,
		Filter: client.Where(
			client.Match("journal", "nature", "cell"),
			client.Range("year", client.Gte(2015)),
			client.Not(client.Exists("erratum")),
		),
		ReturnFields: []pb.StoredField{pb.StoredField_STORED_FIELD_METADATA},
		Highlight:    client.Highlights(100),
	})
	if err != nil {
		log.Fatal(err) // a *client.Error: Code, Message, FieldViolations (e.g. "filter.must[1].range.gte")
	}
	for _, h := range resp.GetHits() {
		m := h.GetMetadata().AsMap()
		fmt.Printf("%d %s %.4f %v %v\n", h.GetRank(), h.GetId(), h.GetScore(), m["journal"], m["year"])
		for _, hl := range h.GetHighlights() {
			fmt.Printf("    %s: %s\n", hl.GetField(), client.MarkMatches(hl, "[", "]"))
		}
	}
}
