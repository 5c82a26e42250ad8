/**
 * @jobwire/client: a Node.js client and worker for the Jobwire job-queue service.
 *
 * ```ts
 * import { Client, Worker } from "@jobwire/client";
 * const client = new Client({ url: "http://127.0.0.1:8080", queue: "emails" });
 * const job = await client.enqueue("send_email", { to: "a@example.com" }, { retries: 2 });
 * ```
 */

export { Client, type ClientOptions } from "./client.js";
export {
  ConnectionFailed,
  Forbidden,
  InvalidJobState,
  InvalidRequest,
  JobAborted,
  JobFailed,
  JobNotFound,
  JobwireError,
  PayloadTooLarge,
  ServiceUnavailable,
  StaleLease,
  Unauthenticated,
  WaitTimeout,
  errorFromResponse,
  type JobwireErrorInit,
} from "./errors.js";
export type { RetryPolicy } from "./http.js";
export { parseSse, type SseEvent } from "./sse.js";
export * from "./types.js";
export {
  Worker,
  type Handler,
  type JobContext,
  type WorkerLogger,
  type WorkerOptions,
} from "./worker.js";
