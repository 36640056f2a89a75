package client_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/hybridsearch/hybridsearch/clients/go/client"
	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// CollectionConfig.Shards makes a sharded collection, which is filled and searched like any
// other. Needs a server with collections (`serve --data-dir`, as scripts/clients_test.sh runs
// it).
func TestCreateShardedCollection(t *testing.T) {
	base := newClient(t)
	ctx := context.Background()
	name := uniqueName(t, "go-shards-")
	info, err := base.CreateCollection(ctx, name, client.CollectionConfig{Shards: 2})
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
	if info.GetShardCount() != 2 || info.GetDocumentCount() != 0 {
		t.Errorf("created %v", info)
	}
	if got, err := base.GetCollection(ctx, name); err != nil || got.GetShardCount() != 2 {
		t.Errorf("GetCollection: %v %v", got, err)
	}

	c := base.WithCollection(name)
	var docs []*pb.Document
	for id, text := range map[string]string{
		"s1": "plasma physics of the solar wind",
		"s2": "solar cells on roofs",
		"s3": "the moon pulls the oceans",
		"s4": "the solar eclipse of 1999",
	} {
		doc, err := client.NewDocument(id, "", text, nil)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	up, err := c.UpsertDocuments(ctx, docs)
	if err != nil || up.GetAcceptedCount() != 4 || up.GetRejectedCount() != 0 {
		t.Fatalf("upsert: %v %v", up, err)
	}
	resp, err := c.Search(ctx, &pb.SearchRequest{Query: "solar", TopK: 10, Mode: sparse})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(resp)
	slices.Sort(got)
	if !slices.Equal(got, []string{"s1", "s2", "s4"}) {
		t.Errorf("search solar: %v, want [s1 s2 s4]", got)
	}
}
