// Package client is a thin typed wrapper over the generated hybridsearch.v1 SearchService
// stubs: default and per-call deadlines, TLS, a bearer token, and errors that carry the
// server's google.rpc.BadRequest field violations.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// DefaultTimeout is the deadline of a call when neither the Options nor the context set one.
const DefaultTimeout = 10 * time.Second

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

// Client calls SearchService. It is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	stub    pb.SearchServiceClient
	timeout time.Duration
	token   string
}

// New connects (lazily) to target, e.g. "127.0.0.1:50051".
func New(target string, opts Options) (*Client, error) {
	creds, err := transportCredentials(opts.TLS)
	if err != nil {
		return nil, err
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, opts.DialOptions...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("hybridsearch: connect %s: %w", target, err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &Client{conn: conn, stub: pb.NewSearchServiceClient(conn), timeout: timeout, token: opts.BearerToken}, nil
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
	resp, err := c.stub.Search(ctx, req, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp, nil
}

// BatchSearch runs several queries in one call; responses come back in request order.
func (c *Client) BatchSearch(ctx context.Context, reqs []*pb.SearchRequest, opts ...grpc.CallOption) ([]*pb.SearchResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.stub.BatchSearch(ctx, &pb.BatchSearchRequest{Requests: reqs}, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetResponses(), nil
}

// StreamResult is one answer on a stream: exactly one of Response and Err is set.
type StreamResult struct {
	RequestID string
	Response  *pb.SearchResponse
	Err       *Error
}

// SearchStream sends every request on one stream and returns the answers in arrival order
// (not request order). A per-request failure is a StreamResult.Err; a failed stream is the
// returned error.
func (c *Client) SearchStream(ctx context.Context, reqs []*pb.SearchStreamRequest, opts ...grpc.CallOption) ([]StreamResult, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	stream, err := c.stub.SearchStream(ctx, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	sendErr := make(chan error, 1)
	go func() {
		for _, r := range reqs {
			if err := stream.Send(r); err != nil {
				sendErr <- err // io.EOF: the server ended the stream; Recv reports why
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	results := make([]StreamResult, 0, len(reqs))
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return results, FromError(err)
		}
		results = append(results, streamResult(msg))
	}
	if err := <-sendErr; err != nil && !errors.Is(err, io.EOF) {
		return results, FromError(err)
	}
	return results, nil
}

func streamResult(msg *pb.SearchStreamResponse) StreamResult {
	if e := msg.GetError(); e != nil {
		return StreamResult{RequestID: msg.GetRequestId(), Err: fromStreamStatus(e)}
	}
	return StreamResult{RequestID: msg.GetRequestId(), Response: msg.GetResponse()}
}

// Stub exposes the generated client for calls the wrapper does not cover.
func (c *Client) Stub() pb.SearchServiceClient { return c.stub }
