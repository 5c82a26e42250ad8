// A client generated from clients/openapi.json (openapi-typescript types + openapi-fetch),
// run against a real service by tests/clients/test_generated_clients.py. The annotations
// below are the point: they compile only while the document types the answers.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Job = components["schemas"]["Job"];
type EnqueuedJob = components["schemas"]["EnqueuedJob"];
type ApiError = components["schemas"]["Error"];

const base = process.env.JOBWIRE_URL ?? "http://127.0.0.1:8080";
const token = process.env.JOBWIRE_TOKEN;
const queue = process.env.JOBWIRE_QUEUE ?? "generated-ts";
const api = createClient<paths>({
  baseUrl: base,
  headers: token ? { authorization: `Bearer ${token}` } : {},
});

function emit(step: string, status: number, body: unknown): void {
  console.log(JSON.stringify({ step, status, body }));
}

const enqueued = await api.POST("/v1/queues/{queue}/jobs", {
  params: { path: { queue } },
  body: { function: "send_welcome_email", kwargs: { user_id: 1 }, retries: 2 },
});
if (!enqueued.data) throw new Error(`enqueue failed: ${JSON.stringify(enqueued.error)}`);
const created: EnqueuedJob = enqueued.data;
const duplicate: boolean = created.duplicate;
emit("enqueue", enqueued.response.status, { id: created.id, status: created.status, duplicate });

const got = await api.GET("/v1/jobs/{job_id}", { params: { path: { job_id: created.id } } });
if (!got.data) throw new Error("get failed");
const job: Job = got.data;
const attempts: number = job.attempts;
emit("get", got.response.status, { id: job.id, status: job.status, attempts });

// A queued job cannot be retried: 409, typed as the Error schema.
const conflict = await api.POST("/v1/jobs/{job_id}/retry", {
  params: { path: { job_id: created.id } },
});
if (conflict.data) throw new Error("retry of a queued job succeeded");
const conflictError: ApiError = conflict.error;
emit("retry-queued", conflict.response.status, conflictError.error);

const aborted = await api.POST("/v1/jobs/{job_id}/abort", {
  params: { path: { job_id: created.id } },
  body: { error: "changed my mind" },
});
if (!aborted.data) throw new Error("abort failed");
const reason: string | undefined = aborted.data.error?.message;
emit("abort", aborted.response.status, { status: aborted.data.status, reason });

const missing = await api.GET("/v1/jobs/{job_id}", {
  params: { path: { job_id: "no-such-job-here" } },
});
if (missing.data) throw new Error("a missing job was found");
const missingError: ApiError = missing.error;
const code: string = missingError.error.code;
emit("get-missing", missing.response.status, { code, message: missingError.error.message });

const info = await api.GET("/v1/queues/{queue}", { params: { path: { queue } } });
if (!info.data) throw new Error("queue info failed");
const aborts: number | undefined = info.data.counts["aborted"];
emit("queue", info.response.status, { name: info.data.name, aborted: aborts });
