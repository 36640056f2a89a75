package client

import (
	"context"

	"google.golang.org/grpc"

	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// Metadata field types of a collection schema.
const (
	Keyword  = pb.MetadataType_METADATA_TYPE_KEYWORD  // a string matched exactly
	Integer  = pb.MetadataType_METADATA_TYPE_INTEGER  // a signed 64-bit integer
	Float    = pb.MetadataType_METADATA_TYPE_FLOAT    // a finite 64-bit float
	Boolean  = pb.MetadataType_METADATA_TYPE_BOOLEAN  // true or false
	Datetime = pb.MetadataType_METADATA_TYPE_DATETIME // an RFC 3339 instant with a time zone
)

// DefaultModel names the model the server was started with (CollectionConfig.Model).
const DefaultModel = "default"

// Field declares a single-valued filterable metadata field, e.g. Field("year", Integer).
func Field(name string, t pb.MetadataType) *pb.MetadataField {
	return &pb.MetadataField{Name: name, Type: t}
}

// MultiField declares a metadata field whose value may be a JSON list of values of type t.
func MultiField(name string, t pb.MetadataType) *pb.MetadataField {
	return &pb.MetadataField{Name: name, Type: t, MultiValued: true}
}

// CollectionConfig describes a new collection. The zero value is a BM25-only collection
// without filterable fields.
type CollectionConfig struct {
	// Fields are the filterable metadata fields (at most 64, unique names); undeclared
	// metadata is still stored and returned.
	Fields []*pb.MetadataField
	// Model is the encoder: DefaultModel, the name of a model directory under the server's
	// --models-dir, or empty for a BM25-only collection.
	Model string
	// DenseIndex is how the vectors are searched (unspecified: exact); ignored without Model.
	DenseIndex pb.DenseIndexKind
	// Shards, N in [1, 1024], makes a sharded collection: its documents are spread over N
	// shards by a hash of their ids, and the count is fixed for its life. Zero (the default)
	// keeps the collection in one index directory. CollectionInfo.ShardCount reports it.
	Shards uint32
}

// CreateCollection makes an empty collection; a taken name (collection or alias) is an
// *Error with codes.AlreadyExists, an invalid name or schema codes.InvalidArgument.
func (c *Client) CreateCollection(ctx context.Context, name string, cfg CollectionConfig, opts ...grpc.CallOption) (*pb.CollectionInfo, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	req := &pb.CreateCollectionRequest{Name: name, Model: cfg.Model, DenseIndex: cfg.DenseIndex, Shards: cfg.Shards}
	if len(cfg.Fields) > 0 {
		req.Schema = &pb.CollectionSchema{Fields: cfg.Fields}
	}
	resp, err := c.collections.CreateCollection(ctx, req, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetCollection(), nil
}

// ListCollections describes every collection of the server, in name order.
func (c *Client) ListCollections(ctx context.Context, opts ...grpc.CallOption) ([]*pb.CollectionInfo, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.collections.ListCollections(ctx, &pb.ListCollectionsRequest{}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetCollections(), nil
}

// GetCollection describes one collection, named by its name or an alias (the answer carries
// its own name); empty names the default collection. Unknown: codes.NotFound.
func (c *Client) GetCollection(ctx context.Context, name string, opts ...grpc.CallOption) (*pb.CollectionInfo, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.collections.GetCollection(ctx, &pb.GetCollectionRequest{Name: name}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetCollection(), nil
}

// DeleteCollection removes a collection (by its name, not an alias) and its aliases, which
// it returns. Unknown: codes.NotFound; the default collection: codes.FailedPrecondition.
func (c *Client) DeleteCollection(ctx context.Context, name string, opts ...grpc.CallOption) ([]string, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.collections.DeleteCollection(ctx, &pb.DeleteCollectionRequest{Name: name}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetRemovedAliases(), nil
}

// AddAliasAction is an UpdateAliases step that points alias at collection (a collection's
// name), creating the alias or moving it.
func AddAliasAction(alias, collection string) *pb.AliasAction {
	return &pb.AliasAction{Action: &pb.AliasAction_Add{Add: &pb.AddAlias{Alias: alias, Collection: collection}}}
}

// RemoveAliasAction is an UpdateAliases step that deletes alias.
func RemoveAliasAction(alias string) *pb.AliasAction {
	return &pb.AliasAction{Action: &pb.AliasAction_Remove{Remove: &pb.RemoveAlias{Alias: alias}}}
}

// UpdateAliases applies 1 to 100 alias actions in order and atomically (every search sees all
// of them or none; if one is invalid none is applied) and returns every alias of the server
// afterwards, alias -> collection.
//
//	aliases, err := c.UpdateAliases(ctx, []*pb.AliasAction{
//		client.AddAliasAction("papers", "papers-v2"), // moves "papers" from papers-v1
//		client.RemoveAliasAction("papers-next"),
//	})
func (c *Client) UpdateAliases(ctx context.Context, actions []*pb.AliasAction, opts ...grpc.CallOption) (map[string]string, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.collections.UpdateAliases(ctx, &pb.UpdateAliasesRequest{Actions: actions}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetAliases(), nil
}

// SetAlias points alias at collection (creating or moving it): UpdateAliases with one
// AddAliasAction.
func (c *Client) SetAlias(ctx context.Context, alias, collection string, opts ...grpc.CallOption) (map[string]string, error) {
	return c.UpdateAliases(ctx, []*pb.AliasAction{AddAliasAction(alias, collection)}, opts...)
}

// RemoveAlias deletes alias (codes.NotFound when there is none): UpdateAliases with one
// RemoveAliasAction.
func (c *Client) RemoveAlias(ctx context.Context, alias string, opts ...grpc.CallOption) (map[string]string, error) {
	return c.UpdateAliases(ctx, []*pb.AliasAction{RemoveAliasAction(alias)}, opts...)
}

// CollectionStub exposes the generated CollectionService client.
func (c *Client) CollectionStub() pb.CollectionServiceClient { return c.collections }
