package client_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hybridsearch/hybridsearch/clients/go/client"
	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

var plusTwo = time.FixedZone("+02:00", 2*60*60)

func TestTimeInMetadataIsUTCRFC3339AtAnyDepth(t *testing.T) {
	published := time.Date(2020, 1, 31, 14, 0, 0, 0, plusTwo)
	at := time.Date(2021, 5, 1, 8, 30, 0, 250_000_000, time.UTC)
	metadata := map[string]any{"published": published, "events": []any{map[string]any{"at": &at}}, "n": 1}
	doc, err := client.NewDocument("d", "", "", metadata)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"published": "2020-01-31T12:00:00Z",
		"events":    []any{map[string]any{"at": "2021-05-01T08:30:00.250Z"}},
		"n":         float64(1),
	}
	if got := doc.GetMetadata().AsMap(); !reflect.DeepEqual(got, want) {
		t.Errorf("metadata %v, want %v", got, want)
	}
	if _, ok := metadata["published"].(time.Time); !ok {
		t.Error("NewDocument changed the caller's map")
	}
	for ns, text := range map[int]string{1_000: "00.000001Z", 7: "00.000000007Z"} {
		doc, err := client.NewDocument("d", "", "", map[string]any{"t": time.Date(2020, 1, 1, 0, 0, 0, ns, time.UTC)})
		if err != nil || doc.GetMetadata().AsMap()["t"] != "2020-01-01T00:00:"+text {
			t.Errorf("%d ns: %v %v", ns, doc.GetMetadata().AsMap(), err)
		}
	}
}

// A time.Time in a declared datetime field is stored as that instant: a datetime range filter
// (whose bound is a time.Time too) finds it.
func TestTimeMetadataIsFilteredAsADatetime(t *testing.T) {
	base := newClient(t)
	ctx := context.Background()
	name := uniqueName(t, "go-dates-")
	fields := []*pb.MetadataField{client.Field("published", client.Datetime)}
	if _, err := base.CreateCollection(ctx, name, client.CollectionConfig{Fields: fields}); err != nil {
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
	c := base.WithCollection(name)
	var docs []*pb.Document
	for id, published := range map[string]time.Time{
		"old": time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC),
		// 01:00 at +02:00 is 2019-12-31T23:00Z: before the bound once converted.
		"edge": time.Date(2020, 1, 1, 1, 0, 0, 0, plusTwo),
		"new":  time.Date(2020, 1, 31, 14, 0, 0, 0, plusTwo),
	} {
		doc, err := client.NewDocument(id, "", "solar wind", map[string]any{"published": published})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	up, err := c.UpsertDocuments(ctx, docs)
	if err != nil || up.GetAcceptedCount() != 3 || up.GetRejectedCount() != 0 {
		t.Fatalf("upsert: %v %v", up, err)
	}
	since := client.Where(client.Range("published", client.Gte(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))))
	resp, err := c.Search(ctx, &pb.SearchRequest{Query: "solar", TopK: 10, Mode: sparse, Filter: since})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(resp); !slices.Equal(got, []string{"new"}) {
		t.Errorf("since 2020: %v, want [new]", got)
	}
	stored, err := c.GetDocument(ctx, "new")
	if err != nil || stored.GetMetadata().AsMap()["published"] != "2020-01-31T12:00:00Z" {
		t.Errorf("stored %v %v", stored.GetMetadata(), err)
	}
}
