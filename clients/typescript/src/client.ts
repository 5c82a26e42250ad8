/**
 * `Client`: enqueue, wait for, watch, abort and inspect jobs of a Jobwire service; pause
 * queues, set their limits, and retry, delete or abort jobs in bulk.
 */

import { randomUUID } from "node:crypto";

import { JobAborted, JobFailed, WaitTimeout } from "./errors.js";
import { filterBody, settingsBody, toSettings, type RawQueueSettings } from "./flow.js";
import { Transport, type RetryPolicy } from "./http.js";
import { parseSse } from "./sse.js";
import {
  isFinished,
  type ApplyOptions,
  type EnqueueOptions,
  type ErrorInfo,
  type GetJobOptions,
  type Job,
  type JobFilter,
  type JobOptions,
  type JobPage,
  type JobSpec,
  type LeaseOptions,
  type LeaseRef,
  type LeaseReply,
  type LeaseState,
  type LeasedJob,
  type ListJobsOptions,
  type Outcome,
  type QueueInfo,
  type QueueOption,
  type QueueSettings,
  type QueueSettingsReply,
  type QueueState,
  type QueueSummary,
  type SignalOption,
} from "./types.js";

export interface ClientOptions {
  /** Base URL of the service (default `$JOBWIRE_URL`, else `http://127.0.0.1:8080`). */
  url?: string;
  /** Bearer token (default: the URL's password, else `$JOBWIRE_TOKEN`). */
  token?: string;
  /** Queue used when a call names none (default `"default"`). */
  queue?: string;
  /** Retries of idempotent calls on 502/503/504 and dropped connections (default 4). */
  retries?: number;
  /** First retry backoff in seconds, doubled each retry (default 0.1). */
  retryBaseDelayS?: number;
  /** Longest retry backoff in seconds (default 2). */
  retryMaxDelayS?: number;
  /** Timeout of one request in seconds, on top of a long-poll's wait (default 30). */
  requestTimeoutS?: number;
  /** A fetch implementation (default: the global one of Node >= 18). */
  fetch?: typeof fetch;
}

/** Longest wait sent in one long-poll; longer waits are several polls. */
const LONG_POLL_CHUNK_S = 60;

export class Client {
  /** The queue calls use when they name none. */
  readonly queue: string;
  /** @internal */
  readonly transport: Transport;

  constructor(options: ClientOptions = {}) {
    const env = typeof process === "undefined" ? {} : process.env;
    const url = options.url ?? env.JOBWIRE_URL ?? "http://127.0.0.1:8080";
    const hasUrlToken = new URL(url).password !== "";
    const token = options.token ?? (hasUrlToken ? undefined : env.JOBWIRE_TOKEN || undefined);
    const retry: RetryPolicy = {
      retries: options.retries ?? 4,
      baseDelayMs: (options.retryBaseDelayS ?? 0.1) * 1000,
      maxDelayMs: (options.retryMaxDelayS ?? 2) * 1000,
    };
    this.queue = options.queue ?? "default";
    this.transport = new Transport({
      url,
      ...(token !== undefined ? { token } : {}),
      retry,
      requestTimeoutMs: (options.requestTimeoutS ?? 30) * 1000,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    });
  }

  /** The service's base URL (without credentials). */
  get url(): string {
    return this.transport.baseUrl;
  }

  // -- producing ------------------------------------------------------------------------

  /**
   * Enqueue a job. A live job with the same id or key is returned instead, with
   * `duplicate: true`.
   */
  async enqueue<K extends object = Record<string, unknown>>(
    fn: string,
    kwargs?: K,
    options: EnqueueOptions = {},
  ): Promise<Job> {
    const body = requestBody({ ...options, function: fn, kwargs: kwargs ?? {} });
    const data = await this.transport.json<RawJob>("POST", `${this.queuePath(options)}/jobs`, {
      body,
      idempotent: true, // the id is fixed above: a resent request dedupes
      signal: options.signal,
    });
    return toJob(data);
  }

  /** Enqueue many jobs in one round trip (at most 1000); the reply keeps their order. */
  async enqueueBatch(jobs: JobSpec[], options: QueueOption & SignalOption = {}): Promise<Job[]> {
    const body = { jobs: jobs.map((spec) => requestBody(spec)) };
    const data = await this.transport.json<{ jobs: RawJob[] }>(
      "POST",
      `${this.queuePath(options)}/jobs/batch`,
      { body, idempotent: true, signal: options.signal },
    );
    return data.jobs.map(toJob);
  }

  /**
   * Enqueue a job, wait for it to finish and return its result.
   *
   * @throws JobFailed The job failed (`error.job.error` says why).
   * @throws JobAborted The job was aborted.
   * @throws WaitTimeout `waitTimeout` seconds ran out (the job keeps going).
   */
  async apply<R = unknown, K extends object = Record<string, unknown>>(
    fn: string,
    kwargs?: K,
    options: ApplyOptions = {},
  ): Promise<R> {
    const deadline = deadlineOf(options.waitTimeout);
    const body = requestBody({ ...options, function: fn, kwargs: kwargs ?? {} });
    const wait = chunk(deadline);
    const data = await this.transport.json<RawJob>(
      "POST",
      `${this.queuePath(options)}/jobs/apply`,
      { body, query: { wait }, idempotent: true, extraTimeoutMs: wait * 1000, signal: options.signal },
    );
    let job = toJob<R>(data);
    if (!isFinished(job)) {
      job = await this.waitFinished<R>(job.id, deadline, { queue: job.queue, signal: options.signal });
    }
    if (!isFinished(job)) throw new WaitTimeout(job, options.waitTimeout ?? 0);
    if (job.status === "failed") throw new JobFailed(job);
    if (job.status === "aborted") throw new JobAborted(job);
    return job.result as R;
  }

  // -- reading --------------------------------------------------------------------------

  /** The job; with `wait` (seconds) it long-polls until the job finishes or time runs out. */
  async getJob<R = unknown>(id: string, options: GetJobOptions = {}): Promise<Job<R>> {
    if (options.wait && options.wait > 0) {
      return this.waitFinished<R>(id, deadlineOf(options.wait), options);
    }
    const data = await this.transport.json<RawJob>("GET", jobPath(id), {
      query: { queue: options.queue },
      idempotent: true,
      signal: options.signal,
    });
    return toJob<R>(data);
  }

  /**
   * The job now and at each status or progress change, until it finishes (or is
   * deleted). Breaking out of the loop closes the stream.
   */
  async *watchJob<R = unknown>(
    id: string,
    options: QueueOption & SignalOption = {},
  ): AsyncGenerator<Job<R>, void, undefined> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const response = await this.transport.send("GET", `${jobPath(id)}/events`, {
        query: { queue: options.queue },
        idempotent: true,
        noTimeout: true,
        accept: "text/event-stream",
        signal: controller.signal,
      });
      if (response.body === null) return;
      for await (const event of parseSse(response.body)) {
        if (event.event === "deleted") return;
        if (event.event !== "job") continue;
        const job = toJob<R>(JSON.parse(event.data) as RawJob);
        yield job;
        if (isFinished(job)) return;
      }
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      controller.abort();
    }
  }

  /** A page of a queue's jobs, newest index order as the service keeps it. */
  async listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    const data = await this.transport.json<{ jobs: RawJob[]; next_cursor: string | null }>(
      "GET",
      `${this.queuePath(options)}/jobs`,
      {
        query: {
          status: options.status,
          function: options.function,
          key_prefix: options.keyPrefix,
          limit: options.limit,
          cursor: options.cursor,
        },
        idempotent: true,
        signal: options.signal,
      },
    );
    return { jobs: data.jobs.map((raw) => toJob(raw)), nextCursor: data.next_cursor };
  }

  /** Every queue with its counts per status. */
  async listQueues(options: SignalOption = {}): Promise<QueueSummary[]> {
    const data = await this.transport.json<{ queues: QueueSummary[] }>("GET", "/v1/queues", {
      idempotent: true,
      signal: options.signal,
    });
    return data.queues;
  }

  /** A queue's counts per status and the workers seen on it in the last minute. */
  async queueInfo(options: QueueOption & SignalOption = {}): Promise<QueueInfo> {
    const data = await this.transport.json<RawQueueInfo>("GET", this.queuePath(options), {
      idempotent: true,
      signal: options.signal,
    });
    const { finished_per_s: finishedPerS, settings, ...rest } = data;
    return { ...rest, finishedPerS, settings: toSettings(settings) };
  }

  // -- controlling ----------------------------------------------------------------------

  /** Abort a job: a queued one at once; an active one's worker hears at once when it
   * streams over gRPC or works on the store, else at its next renewal. */
  async abort(
    id: string,
    options: QueueOption & SignalOption & { error?: string } = {},
  ): Promise<Job> {
    const data = await this.transport.json<RawJob>("POST", `${jobPath(id)}/abort`, {
      query: { queue: options.queue },
      body: { error: options.error ?? "aborted" },
      idempotent: true,
      signal: options.signal,
    });
    return toJob(data);
  }

  /** Queue a finished job again (`InvalidJobState` if it is still live). */
  async retry(id: string, options: QueueOption & SignalOption = {}): Promise<Job> {
    const data = await this.transport.json<RawJob>("POST", `${jobPath(id)}/retry`, {
      query: { queue: options.queue },
      idempotent: false,
      signal: options.signal,
    });
    return toJob(data);
  }

  /** Delete a job whatever its status (admin token). */
  async deleteJob(id: string, options: QueueOption & SignalOption = {}): Promise<void> {
    await this.transport.send("DELETE", jobPath(id), {
      query: { queue: options.queue },
      idempotent: true,
      signal: options.signal,
    });
  }

  // -- flow control ---------------------------------------------------------------------

  /** Stop leasing the queue's jobs, for every worker (running ones finish; admin token). */
  async pauseQueue(options: QueueOption & SignalOption = {}): Promise<QueueState> {
    return this.setPaused("pause", options);
  }

  /** Lease the queue's jobs again (admin token). */
  async resumeQueue(options: QueueOption & SignalOption = {}): Promise<QueueState> {
    return this.setPaused("resume", options);
  }

  /** The queue's limits and whether it is paused. */
  async getQueueSettings(options: QueueOption & SignalOption = {}): Promise<QueueSettingsReply> {
    const data = await this.transport.json<RawSettingsReply>(
      "GET",
      `${this.queuePath(options)}/settings`,
      { idempotent: true, signal: options.signal },
    );
    return { queue: data.queue, paused: data.paused, settings: toSettings(data.settings) };
  }

  /**
   * Replace the queue's limits (admin token); `{}` removes them all. Every worker leasing
   * afterwards keeps them. A value out of range is an `InvalidRequest` naming the field.
   */
  async putQueueSettings(
    settings: QueueSettings,
    options: QueueOption & SignalOption = {},
  ): Promise<QueueSettingsReply> {
    const data = await this.transport.json<RawSettingsReply>(
      "PUT",
      `${this.queuePath(options)}/settings`,
      { body: settingsBody(settings), idempotent: true, signal: options.signal },
    );
    return { queue: data.queue, paused: data.paused, settings: toSettings(data.settings) };
  }

  /** Queue again every finished job `filter` matches (`{}`: all); returns how many. */
  async retryJobs(filter: JobFilter = {}, options: QueueOption & SignalOption = {}): Promise<number> {
    return this.bulk("retry", filter, false, options); // a resend could retry a job twice
  }

  /** Delete every job `filter` matches, whatever its status (admin token); returns how many. */
  async deleteJobs(filter: JobFilter = {}, options: QueueOption & SignalOption = {}): Promise<number> {
    return this.bulk("delete", filter, true, options);
  }

  /** Abort every live job `filter` matches; returns how many. */
  async abortJobs(filter: JobFilter = {}, options: QueueOption & SignalOption = {}): Promise<number> {
    return this.bulk("abort", filter, true, options);
  }

  // -- working (what `Worker` uses; exposed for custom workers) -------------------------

  /** Lease up to `max` jobs, long-polling up to `wait` seconds when none is due. */
  async lease(options: LeaseOptions): Promise<LeaseReply> {
    const wait = options.wait ?? 0;
    const body: Record<string, unknown> = {
      worker_id: options.workerId,
      max: options.max ?? 1,
      wait,
      functions: options.functions ?? [],
    };
    if (options.leaseS !== undefined) body.lease_s = options.leaseS;
    const data = await this.transport.json<{ jobs: RawJob[]; next_due_s: number | null }>(
      "POST",
      `${this.queuePath(options)}/leases`,
      { body, idempotent: false, extraTimeoutMs: wait * 1000, signal: options.signal },
    );
    return { jobs: data.jobs.map((raw) => toJob(raw) as LeasedJob), nextDueS: data.next_due_s };
  }

  /** Renew many leases; each comes back `active`, `aborting` or `lost`. */
  async renew(
    leases: LeaseRef[],
    options: QueueOption & SignalOption & { leaseS?: number } = {},
  ): Promise<LeaseState[]> {
    const body: Record<string, unknown> = {
      leases: leases.map((ref) => ({ job_id: ref.jobId, lease: ref.lease })),
    };
    if (options.leaseS !== undefined) body.lease_s = options.leaseS;
    const data = await this.transport.json<{ states: LeaseState[] }>(
      "POST",
      `${this.queuePath(options)}/leases/renew`,
      { body, idempotent: true, signal: options.signal },
    );
    return data.states;
  }

  /** Report many outcomes; `false` where the lease was stale (nothing changed). */
  async settle(outcomes: Outcome[], options: QueueOption & SignalOption = {}): Promise<boolean[]> {
    const body = { outcomes: outcomes.map(outcomeBody) };
    const data = await this.transport.json<{ settled: boolean[] }>(
      "POST",
      `${this.queuePath(options)}/leases/settle`,
      { body, idempotent: true, signal: options.signal }, // a stale resend settles nothing
    );
    return data.settled;
  }

  /** Renew one lease, optionally storing progress (0..1) and merging keys into meta. */
  async heartbeat(
    ref: LeaseRef,
    options: QueueOption &
      SignalOption & { progress?: number; meta?: Record<string, unknown> } = {},
  ): Promise<{ status: LeaseState; aborted: boolean }> {
    const body: Record<string, unknown> = { lease: ref.lease };
    if (options.progress !== undefined) body.progress = options.progress;
    if (options.meta !== undefined) body.meta = options.meta;
    return this.transport.json("POST", `${jobPath(ref.jobId)}/heartbeat`, {
      query: { queue: options.queue },
      body,
      idempotent: true,
      signal: options.signal,
    });
  }

  /** Report one success (`StaleLease` if the lease no longer owns the job). */
  async complete(
    ref: LeaseRef,
    result: unknown,
    options: QueueOption & SignalOption & { runS?: number } = {},
  ): Promise<Job> {
    const body: Record<string, unknown> = { lease: ref.lease, result: result ?? null };
    if (options.runS !== undefined) body.run_s = options.runS;
    const data = await this.transport.json<RawJob>("POST", `${jobPath(ref.jobId)}/complete`, {
      query: { queue: options.queue },
      body,
      idempotent: false,
      signal: options.signal,
    });
    return toJob(data);
  }

  /**
   * Report one failure; the service retries the job if `retryable` (default true) and it
   * has retries left, after its retry delay.
   */
  async fail(
    ref: LeaseRef,
    error: Partial<ErrorInfo>,
    options: QueueOption & SignalOption & { retryable?: boolean; runS?: number } = {},
  ): Promise<Job> {
    const body: Record<string, unknown> = {
      lease: ref.lease,
      error: errorBody(error),
      retryable: options.retryable ?? true,
    };
    if (options.runS !== undefined) body.run_s = options.runS;
    const data = await this.transport.json<RawJob>("POST", `${jobPath(ref.jobId)}/fail`, {
      query: { queue: options.queue },
      body,
      idempotent: false,
      signal: options.signal,
    });
    return toJob(data);
  }

  /** Reclaim the queue's jobs whose lease expired; returns how many. */
  async sweep(options: QueueOption & SignalOption = {}): Promise<number> {
    const data = await this.transport.json<{ reclaimed: number }>(
      "POST",
      `${this.queuePath(options)}/sweep`,
      { idempotent: true, signal: options.signal },
    );
    return data.reclaimed;
  }

  // -- helpers --------------------------------------------------------------------------

  private queuePath(options: QueueOption): string {
    return `/v1/queues/${encodeURIComponent(options.queue ?? this.queue)}`;
  }

  private async setPaused(
    verb: "pause" | "resume",
    options: QueueOption & SignalOption,
  ): Promise<QueueState> {
    return this.transport.json<QueueState>("POST", `${this.queuePath(options)}/${verb}`, {
      idempotent: true,
      signal: options.signal,
    });
  }

  private async bulk(
    action: "retry" | "delete" | "abort",
    filter: JobFilter,
    idempotent: boolean,
    options: QueueOption & SignalOption,
  ): Promise<number> {
    const data = await this.transport.json<{ count: number }>(
      "POST",
      `${this.queuePath(options)}/jobs/${action}`,
      { body: filterBody(filter), idempotent, signal: options.signal },
    );
    return data.count;
  }

  private async waitFinished<R>(
    id: string,
    deadline: number,
    options: QueueOption & SignalOption,
  ): Promise<Job<R>> {
    for (;;) {
      const wait = chunk(deadline);
      const data = await this.transport.json<RawJob>("GET", jobPath(id), {
        query: { queue: options.queue, wait },
        idempotent: true,
        extraTimeoutMs: wait * 1000,
        signal: options.signal,
      });
      const job = toJob<R>(data);
      if (isFinished(job) || Date.now() >= deadline) return job;
    }
  }
}

// -- wire format ----------------------------------------------------------------------

type RawJob = Omit<Job, "retryDelay" | "retryBackoff" | "concurrencyKey"> & {
  retry_delay: number;
  retry_backoff: boolean | number;
  concurrency_key?: string | null;
  lease?: string;
};

type RawQueueInfo = Omit<QueueInfo, "finishedPerS" | "settings"> & {
  finished_per_s: number;
  settings?: RawQueueSettings;
};

type RawSettingsReply = QueueState & { settings?: RawQueueSettings };

/** A job from the service's JSON (snake_case fields become camelCase). */
export function toJob<R = unknown>(raw: RawJob): Job<R> {
  const { retry_delay: retryDelay, retry_backoff: retryBackoff, concurrency_key, ...rest } = raw;
  return { ...rest, concurrencyKey: concurrency_key ?? null, retryDelay, retryBackoff } as Job<R>;
}

/** The REST body of one job to enqueue. */
function requestBody(spec: JobSpec): Record<string, unknown> {
  const body: Record<string, unknown> = {
    function: spec.function,
    kwargs: spec.kwargs ?? {},
    id: spec.id ?? randomUUID().replaceAll("-", ""),
  };
  const options: Required<{ [K in keyof JobOptions]: string }> = {
    id: "id",
    key: "key",
    concurrencyKey: "concurrency_key",
    timeout: "timeout",
    retries: "retries",
    ttl: "ttl",
    heartbeat: "heartbeat",
    scheduled: "scheduled",
    retryDelay: "retry_delay",
    retryBackoff: "retry_backoff",
    priority: "priority",
  };
  for (const [name, wire] of Object.entries(options) as [keyof JobOptions, string][]) {
    const value = spec[name];
    if (value === undefined || value === null || name === "id") continue;
    body[wire] = value instanceof Date ? value.getTime() / 1000 : value;
  }
  return body;
}

function outcomeBody(outcome: Outcome): Record<string, unknown> {
  const body: Record<string, unknown> = {
    job_id: outcome.jobId,
    lease: outcome.lease,
    status: outcome.status,
    delay_s: outcome.delayS ?? 0,
  };
  if (outcome.function !== undefined) body.function = outcome.function;
  if (outcome.status === "complete") body.result = outcome.result ?? null;
  if (outcome.error !== undefined) body.error = errorBody(outcome.error);
  if (outcome.runS !== undefined) body.run_s = outcome.runS;
  return body;
}

function errorBody(error: Partial<ErrorInfo>): ErrorInfo {
  return {
    type: (error.type ?? "Error").slice(0, 200),
    message: (error.message ?? "").slice(0, 10_000),
    traceback: (error.traceback ?? "").slice(0, 100_000),
  };
}

function jobPath(id: string): string {
  return `/v1/jobs/${encodeURIComponent(id)}`;
}

function deadlineOf(seconds: number | undefined): number {
  return seconds === undefined ? Number.POSITIVE_INFINITY : Date.now() + seconds * 1000;
}

/** The next long-poll's wait in seconds: what is left, at most one chunk. */
function chunk(deadline: number): number {
  const left = (deadline - Date.now()) / 1000;
  return Math.max(0, Math.min(left, LONG_POLL_CHUNK_S));
}
