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
type Error struct {
	Code            codes.Code
	Message         string
	FieldViolations []FieldViolation
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

// FromError converts a gRPC error into *Error, reading BadRequest details from the status
// (the grpc-status-details-bin trailer). nil stays nil.
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
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out.FieldViolations = append(out.FieldViolations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
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
