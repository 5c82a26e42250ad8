"""gRPC stubs of the proto package ``jobwire.v1``, generated from ``protos/`` by
``make proto`` (``protos/generate.py``): never edit ``jobwire_pb2*`` by hand."""
