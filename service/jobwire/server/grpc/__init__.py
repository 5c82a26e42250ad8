"""The gRPC API (jobwire.v1): servicers that translate to and from the service core."""
