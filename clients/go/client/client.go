// Package client is a thin typed wrapper over the generated hybridsearch.v1 SearchService,
// IndexService and CollectionService stubs: default and per-call deadlines, TLS, a bearer
// token, a default collection per Client (WithCollection), metadata filter builders (Where,
// Match, Range, ...), and errors that carry the server's google.rpc.BadRequest field
// violations.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// DefaultTimeout is the deadline of a call when neither the Options nor the context set one.
const DefaultTimeout = 10 * time.Second

// DefaultMaxRecvMsgSize is the largest reply a Client accepts unless Options.MaxRecvMsgSize
// says otherwise: 16 MiB, the server's --max-message-bytes default (gRPC's own is 4 MiB).
const DefaultMaxRecvMsgSize = 16 << 20

// Options configures a Client. The zero value is a plaintext connection with DefaultTimeout.
type Options struct {
	// Timeout is the default deadline of every call; a context that already has a deadline
	// keeps it. Zero means DefaultTimeout; negative means none.
	Timeout time.Duration
	// TLS enables TLS. RootCAsPEM empty means the system roots; a client certificate pair
	// enables mutual TLS.
	TLS *TLSOptions
	// BearerToken is sent as `authorization: Bearer <token>` on every call.
	BearerToken string
	// MaxRecvMsgSize is the largest reply accepted, in bytes. Zero means
	// DefaultMaxRecvMsgSize (16 MiB); raise it for a server with a larger --max-message-bytes.
	MaxRecvMsgSize int
	// DialOptions are appended to the client's own.
	DialOptions []grpc.DialOption
}

// TLSOptions are PEM-encoded certificates for a TLS connection.
type TLSOptions struct {
	RootCAsPEM         []byte
	ClientCertPEM      []byte
	ClientKeyPEM       []byte
	ServerNameOverride string
}

// Client calls SearchService, IndexService and CollectionService. It is safe for concurrent
// use.
type Client struct {
	conn        *grpc.ClientConn
	stub        pb.SearchServiceClient
	index       pb.IndexServiceClient
	collections pb.CollectionServiceClient
	timeout     time.Duration
	token       string
	collection  string // default collection of requests that name none; "": the server's
}

// New connects (lazily) to target, e.g. "127.0.0.1:50051".
func New(target string, opts Options) (*Client, error) {
	creds, err := transportCredentials(opts.TLS)
	if err != nil {
		return nil, err
	}
	maxRecv := opts.MaxRecvMsgSize
	if maxRecv == 0 {
		maxRecv = DefaultMaxRecvMsgSize
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv)),
	}, opts.DialOptions...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("hybridsearch: connect %s: %w", target, err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &Client{
		conn:        conn,
		stub:        pb.NewSearchServiceClient(conn),
		index:       pb.NewIndexServiceClient(conn),
		collections: pb.NewCollectionServiceClient(conn),
		timeout:     timeout,
		token:       opts.BearerToken,
	}, nil
}

// WithCollection returns a Client on the same connection whose searches and index calls go
// to the named collection (or alias) instead of the server's default one: a SearchRequest
// (also in a batch or on a stream) or an UpsertDocumentsRequest that leaves Collection empty
// gets this name (in a copy; the caller's message is not changed), while one that names a
// collection keeps it. DeleteDocuments, GetDocument, GetIndexStats and Compact act on it.
// An empty name means the server's default collection again. The derived Client shares the
// connection: Close either one only when done with both.
func (c *Client) WithCollection(name string) *Client {
	d := *c
	d.collection = name
	return &d
}

// Collection is the collection (or alias) this Client sends requests to; empty: the server's
// default one.
func (c *Client) Collection() string { return c.collection }

// scoped returns req, or a copy naming c's collection when req names none.
func (c *Client) scoped(req *pb.SearchRequest) *pb.SearchRequest {
	if c.collection == "" || req == nil || req.GetCollection() != "" {
		return req
	}
	out := proto.Clone(req).(*pb.SearchRequest)
	out.Collection = c.collection
	return out
}

func transportCredentials(t *TLSOptions) (credentials.TransportCredentials, error) {
	if t == nil {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerNameOverride}
	if len(t.RootCAsPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.RootCAsPEM) {
			return nil, errors.New("hybridsearch: no certificate found in RootCAsPEM")
		}
		cfg.RootCAs = pool
	}
	if len(t.ClientCertPEM) > 0 || len(t.ClientKeyPEM) > 0 {
		pair, err := tls.X509KeyPair(t.ClientCertPEM, t.ClientKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("hybridsearch: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(cfg), nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// callContext applies the default deadline (unless ctx has one) and the bearer token.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	if c.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
	}
	return ctx, cancel
}

// Search runs one query. Set a per-call deadline with context.WithTimeout.
func (c *Client) Search(ctx context.Context, req *pb.SearchRequest, opts ...grpc.CallOption) (*pb.SearchResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.stub.Search(ctx, c.scoped(req), opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp, nil
}

// BatchSearch runs several queries in one call; responses come back in request order. Each
// request names its own collection (or gets the Client's, see WithCollection).
func (c *Client) BatchSearch(ctx context.Context, reqs []*pb.SearchRequest, opts ...grpc.CallOption) ([]*pb.SearchResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	if c.collection != "" {
		scoped := make([]*pb.SearchRequest, len(reqs))
		for i, r := range reqs {
			scoped[i] = c.scoped(r)
		}
		reqs = scoped
	}
	resp, err := c.stub.BatchSearch(ctx, &pb.BatchSearchRequest{Requests: reqs}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetResponses(), nil
}

// StreamResult is one answer on a stream: exactly one of Response and Err is set. Partial is
// true on the early BM25-only answer of a progressive request (SearchStreamRequest.Progressive
// on a hybrid query); the final answer for the same RequestID follows with Partial false.
type StreamResult struct {
	RequestID string
	Response  *pb.SearchResponse
	Err       *Error
	Partial   bool
}

// ResultStream reads the answers of a SearchStream as they arrive (arrival order, not request
// order). Read it with Recv or range over All; call Close when you stop early. It is not safe
// for concurrent Recv calls.
type ResultStream struct {
	stream grpc.BidiStreamingClient[pb.SearchStreamRequest, pb.SearchStreamResponse]
	cancel context.CancelFunc
	err    error // sticky: io.EOF or the stream's failure
	closed atomic.Bool
}

// errClosed is what Recv returns once Close was called.
var errClosed = &Error{Code: codes.Canceled, Message: "stream closed by the caller"}

// SearchStream opens one stream, sends reqs on it from a goroutine and returns at once; the
// answers are read from the returned ResultStream while requests are still being sent, so reqs
// may be lazy (e.g. fed from a channel). Sending stops when reqs ends (the stream is then
// half-closed), when the stream fails, or when the ResultStream is closed or ctx is done. A
// sequence that waits for more requests must itself return once ctx is done, or its goroutine
// lives until it does. Use slices.Values for a slice.
//
// Each request's Search names its own collection (or gets the Client's, see WithCollection).
// A per-request failure is a StreamResult.Err; a failed stream (deadline, cancellation,
// server shutdown) is the *Error that Recv returns after the answers that did arrive.
func (c *Client) SearchStream(ctx context.Context, reqs iter.Seq[*pb.SearchStreamRequest], opts ...grpc.CallOption) (*ResultStream, error) {
	ctx, cancelTimeout := c.callContext(ctx)
	ctx, cancelCall := context.WithCancel(ctx)
	cancel := func() { cancelCall(); cancelTimeout() }
	stream, err := c.stub.SearchStream(ctx, opts...)
	if err != nil {
		cancel()
		return nil, FromError(err)
	}
	go func() {
		for r := range reqs {
			if ctx.Err() != nil {
				return
			}
			if c.collection != "" && r.GetSearch() != nil && r.GetSearch().GetCollection() == "" {
				r = proto.Clone(r).(*pb.SearchStreamRequest)
				r.Search.Collection = c.collection
			}
			if stream.Send(r) != nil {
				return // io.EOF: the stream ended; Recv reports why
			}
		}
		if ctx.Err() == nil { // a sequence cut short by cancellation must not end the stream cleanly
			_ = stream.CloseSend()
		}
	}()
	return &ResultStream{stream: stream, cancel: cancel}, nil
}

// Recv returns the next answer; io.EOF once the server has answered every request and closed
// the stream; otherwise a failed stream as *Error. After any error it returns the same error
// again, and the call's resources are released.
func (s *ResultStream) Recv() (StreamResult, error) {
	if s.err != nil {
		return StreamResult{}, s.err
	}
	if s.closed.Load() {
		s.err = errClosed
		return StreamResult{}, s.err
	}
	msg, err := s.stream.Recv()
	if err == nil && s.closed.Load() {
		err = errClosed // closed while this Recv waited: drop what was buffered
	}
	if err != nil {
		if !errors.Is(err, io.EOF) && err != errClosed {
			err = FromError(err)
		}
		s.err = err
		s.cancel()
		return StreamResult{}, err
	}
	return streamResult(msg), nil
}

// All ranges over the remaining answers. A failed stream ends the range with one
// (StreamResult{}, err) pair; the normal end of the stream yields no error. Breaking out of
// the loop closes the stream.
func (s *ResultStream) All() iter.Seq2[StreamResult, error] {
	return func(yield func(StreamResult, error) bool) {
		for {
			r, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(StreamResult{}, err)
				return
			}
			if !yield(r, nil) {
				s.Close()
				return
			}
		}
	}
}

// Close cancels the stream if it is still open (the server sees CANCELLED) and stops the
// sending goroutine. A later Recv on a stream that had not ended returns an *Error with
// codes.Canceled at once, without the answers that were already buffered; a stream that had
// ended keeps its io.EOF or error. It may be called from another goroutine, more than once,
// and after the stream ended.
func (s *ResultStream) Close() {
	s.closed.Store(true)
	s.cancel()
}

func streamResult(msg *pb.SearchStreamResponse) StreamResult {
	if e := msg.GetError(); e != nil {
		return StreamResult{RequestID: msg.GetRequestId(), Err: fromStreamStatus(e)}
	}
	return StreamResult{RequestID: msg.GetRequestId(), Response: msg.GetResponse(), Partial: msg.GetPartial()}
}

// Stub exposes the generated SearchService client for calls the wrapper does not cover.
func (c *Client) Stub() pb.SearchServiceClient { return c.stub }

// IndexStub exposes the generated IndexService client.
func (c *Client) IndexStub() pb.IndexServiceClient { return c.index }
