"""Backends that reach a running Jobwire service over the network (http, grpc)."""
