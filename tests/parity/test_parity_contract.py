"""The contract in step on both transports: every REST operation of clients/openapi.json has
its RPC in the proto, and the proto documents the error codes of every RPC."""

import json
import re
from pathlib import Path

from jobwire.v1 import jobwire_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "protos" / "jobwire" / "v1" / "jobwire.proto"
# REST operationId -> "Service/Method" (grpc.health.v1.Health for the probes).
RPC_OF = {
    "enqueueJob": "JobService/Enqueue",
    "enqueueJobs": "JobService/EnqueueBatch",
    "applyJob": "JobService/Apply",
    "getJob": "JobService/GetJob",
    "watchJob": "JobService/WatchJob",
    "abortJob": "JobService/AbortJob",
    "retryJob": "JobService/RetryJob",
    "deleteJob": "JobService/DeleteJob",
    "listJobs": "JobService/ListJobs",
    "getQueue": "JobService/GetQueue",
    "listQueues": "JobService/ListQueues",
    "leaseJobs": "WorkerService/Lease",
    "heartbeatJob": "WorkerService/Heartbeat",
    "renewLeases": "WorkerService/Heartbeat",
    "completeJob": "WorkerService/Complete",
    "failJob": "WorkerService/Fail",
    "settleJobs": "WorkerService/Settle",
    "sweepQueue": "WorkerService/Sweep",
    "pauseQueue": "QueueService/PauseQueue",
    "resumeQueue": "QueueService/ResumeQueue",
    "getQueueSettings": "QueueService/GetQueueSettings",
    "putQueueSettings": "QueueService/PutQueueSettings",
    "retryJobs": "QueueService/BulkJobs",
    "deleteJobs": "QueueService/BulkJobs",
    "abortJobs": "QueueService/BulkJobs",
    "healthz": "grpc.health.v1.Health/Check",
    "readyz": "grpc.health.v1.Health/Check",
    "metrics": None,  # Prometheus text over HTTP only
}


def _rpcs() -> set[str]:
    return {
        f"{service.name}/{method.name}"
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def test_every_rest_operation_has_its_rpc() -> None:
    document = json.loads((ROOT / "clients" / "openapi.json").read_text(encoding="utf-8"))
    operations = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    assert operations == set(RPC_OF), "map each new REST operation to its RPC here"
    rpcs = _rpcs()
    for operation, rpc in RPC_OF.items():
        if rpc is not None and not rpc.startswith("grpc."):
            assert rpc in rpcs, f"{operation}: no RPC {rpc}"
    assert rpcs - {rpc for rpc in RPC_OF.values() if rpc} == {"WorkerService/Work"}


def test_every_rpc_documents_its_error_codes() -> None:
    text = PROTO.read_text(encoding="utf-8")
    for rpc in _rpcs():
        method = rpc.split("/")[1]
        match = re.search(rf"((?:\n  //[^\n]*)+)\n  rpc {method}\(", text)
        assert match, f"{rpc} has no comment"
        comment = match.group(1)
        assert "Errors:" in comment, f"{rpc}: its comment names no error codes"
        codes = set(re.findall(r"\b[A-Z][A-Z_]{4,}\b", comment.split("Errors:")[1]))
        assert codes <= {"INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "UNAVAILABLE"}
        assert "UNAVAILABLE" in codes, rpc
