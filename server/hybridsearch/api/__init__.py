"""gRPC edge: servicers, proto <-> domain conversion, error mapping. The only grpc importer."""
