"""``jobwire.v1.QueueService``: pause and resume a queue, read and replace its limits, and
retry, delete or abort every job a filter matches.

Each method translates its request into one ``ServiceCore`` call and the answer into
messages; requests are validated by the same schemas as REST's bodies, and errors are
translated once by the edge interceptor (which also checks a bulk action's permission).
"""

from typing import Any

import grpc

from jobwire.errors import InvalidRequest
from jobwire.flow import QueueSettings
from jobwire.server.core import ServiceCore
from jobwire.server.schemas import JobFilterBody, QueueSettingsBody
from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc
from jobwire.v1.codec import BULK_ACTION_FROM_PB, filter_fields, settings_fields, settings_to_pb

Context = grpc.aio.ServicerContext[Any, Any]


class QueueServicer(pb_grpc.QueueServiceServicer):
    """The operators' API.

    Args:
        core: The service's operations.
    """

    def __init__(self, core: ServiceCore) -> None:
        self._core = core

    async def PauseQueue(self, request: pb.PauseQueueRequest, context: Context) -> pb.QueueState:
        await self._core.pause(request.queue)
        return pb.QueueState(queue=request.queue, paused=True)

    async def ResumeQueue(self, request: pb.ResumeQueueRequest, context: Context) -> pb.QueueState:
        await self._core.resume(request.queue)
        return pb.QueueState(queue=request.queue, paused=False)

    async def GetQueueSettings(
        self, request: pb.GetQueueSettingsRequest, context: Context
    ) -> pb.QueueSettingsReply:
        settings, paused = await self._core.settings(request.queue)
        return settings_reply(request.queue, settings, paused)

    async def PutQueueSettings(
        self, request: pb.PutQueueSettingsRequest, context: Context
    ) -> pb.QueueSettingsReply:
        body = QueueSettingsBody.model_validate(settings_fields(request.settings))
        settings, paused = await self._core.configure(request.queue, body.to_settings())
        return settings_reply(request.queue, settings, paused)

    async def BulkJobs(self, request: pb.BulkJobsRequest, context: Context) -> pb.BulkJobsReply:
        action = BULK_ACTION_FROM_PB.get(request.action)
        if action is None:
            raise InvalidRequest("action: one of RETRY, DELETE, ABORT")
        where = JobFilterBody.model_validate(filter_fields(request.filter)).to_filter()
        return pb.BulkJobsReply(count=await self._core.bulk(request.queue, action, where))


def settings_reply(queue: str, settings: QueueSettings, paused: bool) -> pb.QueueSettingsReply:
    """A queue's limits and pause state as a reply."""
    return pb.QueueSettingsReply(
        queue=queue, paused=paused, settings=settings_to_pb(settings.to_dict())
    )
