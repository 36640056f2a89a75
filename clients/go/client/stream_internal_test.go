package client

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

func TestStreamResultCarriesPartial(t *testing.T) {
	early := streamResult(&pb.SearchStreamResponse{RequestId: "q", Partial: true,
		Result: &pb.SearchStreamResponse_Response{Response: &pb.SearchResponse{}}})
	final := streamResult(&pb.SearchStreamResponse{RequestId: "q",
		Result: &pb.SearchStreamResponse_Response{Response: &pb.SearchResponse{}}})
	if !early.Partial || final.Partial {
		t.Fatalf("Partial: early %v, final %v; want true, false", early.Partial, final.Partial)
	}
}

// An in-band stream error answers status.Convert with its BadRequest too.
func TestStreamErrorStatusHasBadRequest(t *testing.T) {
	e := fromStreamStatus(&pb.ErrorStatus{Code: 3, Message: "bad",
		FieldViolations: []*pb.FieldViolation{{Field: "query", Description: "empty"}}})
	details := status.Convert(e).Details()
	if len(details) != 1 {
		t.Fatalf("details = %v", details)
	}
	if br, ok := details[0].(*errdetails.BadRequest); !ok || br.GetFieldViolations()[0].GetField() != "query" {
		t.Fatalf("detail = %v", details[0])
	}
}
