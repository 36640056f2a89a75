package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

const (
	// DefaultBatchSize is the number of documents per UpsertDocumentsRequest (one atomic
	// commit on the server) when UpsertOptions leaves it zero.
	DefaultBatchSize = 100
	// DefaultMaxBatchBytes cuts a batch early once its documents reach this many serialized
	// bytes (the server accepts 16 MiB messages by default); a larger document travels alone.
	DefaultMaxBatchBytes = 4 << 20
)

// NewDocument builds a Document message; metadata (may be nil) is a JSON-like object whose
// values structpb.NewValue accepts (strings, numbers, bools, nil, []any, map[string]any) or
// time.Time: at any depth, a time.Time (or non-nil *time.Time) becomes its RFC 3339 text in
// UTC, e.g. "2020-01-31T12:00:00Z", the form a datetime field stores and filters.
func NewDocument(id, title, text string, metadata map[string]any) (*pb.Document, error) {
	doc := &pb.Document{Id: id, Title: title, Text: text}
	if metadata != nil {
		m, err := structpb.NewStruct(jsonMetadata(metadata).(map[string]any))
		if err != nil {
			return nil, fmt.Errorf("hybridsearch: document %q metadata: %w", id, err)
		}
		doc.Metadata = m
	}
	return doc, nil
}

// UpsertOptions sets how documents are cut into UpsertDocumentsRequest messages and where
// they go. Zero values mean the defaults.
type UpsertOptions struct {
	BatchSize     int
	MaxBatchBytes int
	// Collection is the collection or alias written to; empty: the Client's (see
	// WithCollection), else the server's default collection. Every message of the stream
	// names it.
	Collection string
}

// Upserter streams documents to UpsertDocuments: Add buffers them and sends a message per full
// batch, Close sends the rest and returns the summed response. Not safe for concurrent use.
// An Upserter must end with Close or Abort (each releases the call).
type Upserter struct {
	stream       grpc.ClientStreamingClient[pb.UpsertDocumentsRequest, pb.UpsertDocumentsResponse]
	cancel       context.CancelFunc
	batchSize    int
	maxBytes     int
	pending      []*pb.Document
	pendingBytes int
	collection   string
	err          error // sticky: the call failed or ended
}

// NewUpserter opens an UpsertDocuments stream. The deadline (ctx's own, else Options.Timeout)
// covers the whole stream, so give a long ingestion a context with a suitable deadline.
func (c *Client) NewUpserter(ctx context.Context, o UpsertOptions, opts ...grpc.CallOption) (*Upserter, error) {
	if o.BatchSize < 0 || o.MaxBatchBytes < 0 {
		return nil, fmt.Errorf("hybridsearch: negative batch settings %+v", o)
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.Collection == "" {
		o.Collection = c.collection
	}
	ctx, cancelTimeout := c.callContext(ctx)
	ctx, cancelCall := context.WithCancel(ctx)
	cancel := func() { cancelCall(); cancelTimeout() }
	stream, err := c.index.UpsertDocuments(ctx, opts...)
	if err != nil {
		cancel()
		return nil, FromError(err)
	}
	return &Upserter{stream: stream, cancel: cancel, batchSize: o.BatchSize, maxBytes: o.MaxBatchBytes, collection: o.Collection}, nil
}

// Add queues documents, sending every batch they complete. An error means the call failed
// (the *Error the server ended it with); the batches sent before stay committed, and the
// *Error's PartialUpsert, when the server sent it, says how many messages were applied.
func (u *Upserter) Add(docs ...*pb.Document) error {
	for _, doc := range docs {
		if u.err != nil {
			return u.err
		}
		size := proto.Size(doc) + 8 // field tag and length prefix, generously
		if len(u.pending) > 0 && u.pendingBytes+size > u.maxBytes {
			if err := u.flush(); err != nil {
				return err
			}
		}
		u.pending = append(u.pending, doc)
		u.pendingBytes += size
		if len(u.pending) >= u.batchSize {
			if err := u.flush(); err != nil {
				return err
			}
		}
	}
	return u.err
}

// Send sends a ready batch as one message of its own (after the queued documents). A batch
// that names no collection is sent (as a copy) to the Upserter's.
func (u *Upserter) Send(batch *pb.UpsertDocumentsRequest) error {
	if err := u.flush(); err != nil {
		return err
	}
	if u.collection != "" && batch.GetCollection() == "" {
		batch = proto.Clone(batch).(*pb.UpsertDocumentsRequest)
		batch.Collection = u.collection
	}
	return u.send(batch)
}

func (u *Upserter) flush() error {
	if len(u.pending) == 0 {
		return u.err
	}
	batch := &pb.UpsertDocumentsRequest{Documents: u.pending, Collection: u.collection}
	u.pending, u.pendingBytes = nil, 0
	return u.send(batch)
}

func (u *Upserter) send(batch *pb.UpsertDocumentsRequest) error {
	if u.err != nil {
		return u.err
	}
	if err := u.stream.Send(batch); err != nil {
		if errors.Is(err, io.EOF) { // the server ended the call: its status says why
			_, err = u.stream.CloseAndRecv()
		}
		u.fail(FromError(err))
	}
	return u.err
}

func (u *Upserter) fail(err error) {
	u.err = err
	u.cancel()
}

// Close sends the queued documents, half-closes the stream and returns the server's summary
// of every batch: accepted, replaced and rejected counts (each rejection with its position,
// id and reason) and the index generation after the last commit.
// A stream that failed part-way returns an *Error whose PartialUpsert is the summary of the
// messages applied before the failure (AppliedMessages of them, in order).
func (u *Upserter) Close() (*pb.UpsertDocumentsResponse, error) {
	if err := u.flush(); err != nil {
		return nil, err
	}
	resp, err := u.stream.CloseAndRecv()
	if err != nil {
		u.fail(FromError(err))
		return nil, u.err
	}
	u.fail(errors.New("hybridsearch: upserter already closed"))
	return resp, nil
}

// Abort cancels the call without sending the queued documents; batches already sent may have
// been committed. Safe after Close.
func (u *Upserter) Abort() {
	if u.err == nil {
		u.err = errors.New("hybridsearch: upserter aborted")
	}
	u.cancel()
}

// UpsertDocuments streams docs in batches of DefaultBatchSize documents to the Client's
// collection (see Upserter for other batch sizes, another collection or lazily produced
// documents) and returns the summed response.
func (c *Client) UpsertDocuments(ctx context.Context, docs []*pb.Document, opts ...grpc.CallOption) (*pb.UpsertDocumentsResponse, error) {
	u, err := c.NewUpserter(ctx, UpsertOptions{}, opts...)
	if err != nil {
		return nil, err
	}
	if err := u.Add(docs...); err != nil {
		u.Abort()
		return nil, err
	}
	return u.Close()
}

// DeleteDocuments deletes documents by id from the Client's collection in one commit; ids with
// no live document are listed in NotFoundIds.
func (c *Client) DeleteDocuments(ctx context.Context, ids []string, opts ...grpc.CallOption) (*pb.DeleteDocumentsResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.index.DeleteDocuments(ctx, &pb.DeleteDocumentsRequest{Ids: ids, Collection: c.collection}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp, nil
}

// GetDocument returns one document's stored fields from the Client's collection; a missing id
// (or collection) is an *Error with codes.NotFound.
func (c *Client) GetDocument(ctx context.Context, id string, opts ...grpc.CallOption) (*pb.Document, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.index.GetDocument(ctx, &pb.GetDocumentRequest{Id: id, Collection: c.collection}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetDocument(), nil
}

// GetIndexStats describes the Client's collection as of its last commit.
func (c *Client) GetIndexStats(ctx context.Context, opts ...grpc.CallOption) (*pb.GetIndexStatsResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.index.GetIndexStats(ctx, &pb.GetIndexStatsRequest{Collection: c.collection}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp, nil
}

// Compact rewrites the Client's collection without the rows of deleted or replaced documents
// now, whatever the server's background policy says, as one commit. A collection already
// compact is left as it is: the response's AlreadyCompact is true, at the current generation.
func (c *Client) Compact(ctx context.Context, opts ...grpc.CallOption) (*pb.CompactResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.index.Compact(ctx, &pb.CompactRequest{Collection: c.collection}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp, nil
}
