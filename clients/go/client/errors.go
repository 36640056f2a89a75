package client

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// FieldViolation names one invalid request field, e.g. Field "top_k".
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a failed call: the canonical code, the server's message and, for
// INVALID_ARGUMENT, the google.rpc.BadRequest field violations.
//
// PartialUpsert is, for an UpsertDocuments stream that failed part-way (RESOURCE_EXHAUSTED
// at capacity, UNAVAILABLE at the server's graceful stop, INVALID_ARGUMENT or NOT_FOUND at a
// later message, ...), the server's response so far: GetAppliedMessages says how many
// messages were applied (the first N; the rest were not: send those again on a new stream),
// with their accepted, replaced and rejected counts, rejections and generation. It is nil
// when the status carries none (any other call or failure).
type Error struct {
	Code            codes.Code
	Message         string
	FieldViolations []FieldViolation
	PartialUpsert   *pb.UpsertDocumentsResponse
	status          *status.Status // the original status (with its details), when there was one
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hybridsearch: %s: %s", e.Code, e.Message)
	for _, v := range e.FieldViolations {
		fmt.Fprintf(&b, " [%s: %s]", v.Field, v.Description)
	}
	return b.String()
}

// GRPCStatus lets status.FromError, status.Code and status.Convert see through the wrapper:
// the server's status with its details (the google.rpc.BadRequest included), or for an
// in-band stream error one rebuilt with a BadRequest detail from FieldViolations.
func (e *Error) GRPCStatus() *status.Status {
	if e.status != nil {
		return e.status
	}
	st := status.New(e.Code, e.Message)
	if len(e.FieldViolations) == 0 {
		return st
	}
	br := &errdetails.BadRequest{}
	for _, v := range e.FieldViolations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
	}
	if withDetails, err := st.WithDetails(br); err == nil {
		return withDetails
	}
	return st
}

// FromError converts a gRPC error into *Error, reading the BadRequest and UpsertDocumentsResponse
// details from the status (the grpc-status-details-bin trailer). nil stays nil.
func FromError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, d := range st.Details() {
		switch detail := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range detail.GetFieldViolations() {
				out.FieldViolations = append(out.FieldViolations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *pb.UpsertDocumentsResponse:
			if out.PartialUpsert == nil {
				out.PartialUpsert = detail
			}
		}
	}
	return out
}

func fromStreamStatus(s *pb.ErrorStatus) *Error {
	out := &Error{Code: codes.Code(s.GetCode()), Message: s.GetMessage()}
	for _, v := range s.GetFieldViolations() {
		out.FieldViolations = append(out.FieldViolations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
	}
	return out
}
