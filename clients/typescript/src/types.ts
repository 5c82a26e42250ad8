/** Jobs, options and replies of the Jobwire REST API, as this client exposes them. */

/** Where a job is in its lifecycle. */
export type JobStatus =
  | "queued"
  | "scheduled"
  | "active"
  | "aborting"
  | "aborted"
  | "failed"
  | "complete";

/** The statuses a job ends in. */
export const FINISHED_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>([
  "complete",
  "failed",
  "aborted",
]);

/** Whether a job reached `complete`, `failed` or `aborted`. */
export function isFinished(job: { status: JobStatus }): boolean {
  return FINISHED_STATUSES.has(job.status);
}

/** Why a job failed or was aborted. */
export interface ErrorInfo {
  /** The exception's type (`"Aborted"`, `"TimeoutError"`, `"LeaseExpired"`, ...). */
  type: string;
  message: string;
  traceback: string;
}

/**
 * A job as the service returns it. Times are Unix epoch seconds (0: not yet), durations
 * are seconds. Field names are the REST API's, except `retryDelay` and `retryBackoff`.
 */
export interface Job<R = unknown> {
  id: string;
  function: string;
  kwargs: Record<string, unknown>;
  queue: string;
  key: string | null;
  /** Groups jobs for the queue's per-key limits (`maxActivePerKey`, `ratePerKey`). */
  concurrencyKey: string | null;
  status: JobStatus;
  priority: number;
  timeout: number | null;
  heartbeat: number;
  retries: number;
  attempts: number;
  ttl: number;
  scheduled: number;
  retryDelay: number;
  retryBackoff: boolean | number;
  progress: number;
  meta: Record<string, unknown>;
  result: R | null;
  error: ErrorInfo | null;
  created: number;
  queued: number;
  started: number;
  completed: number;
  touched: number;
  worker: string | null;
  /** Only on enqueue replies: true when a live job with this id or key already existed. */
  duplicate?: boolean;
}

/** A job handed to a worker, with the token of its current attempt's lease. */
export interface LeasedJob extends Job {
  lease: string;
}

/**
 * Job options, mirroring the Python SDK's `enqueue` keyword arguments. Anything left out
 * takes the service's default.
 */
export interface JobOptions {
  /** Job id (the client generates one when absent, so that retried requests dedupe). */
  id?: string;
  /** Deduplication key: while a job with this key is queued, scheduled or active, no other. */
  key?: string;
  /**
   * Groups jobs for the queue's per-key limits (a tenant id, say): `maxActivePerKey` and
   * `ratePerKey` hold for each key apart. 1..512 characters.
   */
  concurrencyKey?: string;
  /** Seconds before the worker cancels the task (none by default). */
  timeout?: number;
  /** Retries after the first attempt (default 0). */
  retries?: number;
  /** Seconds the finished job stays readable (default 600; 0 forever; -1 deleted at once). */
  ttl?: number;
  /** Lease length in seconds: a job whose worker is silent that long is retried or failed. */
  heartbeat?: number;
  /** When the job may start: Unix time in seconds, or a Date. */
  scheduled?: number | Date;
  /** Seconds before a retry. */
  retryDelay?: number;
  /** Double the delay at each retry (jittered into [d/2, d]); a number also caps it. */
  retryBackoff?: boolean | number;
  /** Higher runs first, -1000..1000 (default 0). */
  priority?: number;
}

/** Which queue a call is about (the client's default queue when absent). */
export interface QueueOption {
  queue?: string;
}

/** Passed to every call that can be cancelled. */
export interface SignalOption {
  signal?: AbortSignal;
}

export interface EnqueueOptions extends JobOptions, QueueOption, SignalOption {}

/** One job of a batch. */
export interface JobSpec extends JobOptions {
  function: string;
  kwargs?: Record<string, unknown>;
}

export interface ApplyOptions extends EnqueueOptions {
  /** Seconds to wait for the job to finish (default: until it does). */
  waitTimeout?: number;
}

export interface GetJobOptions extends QueueOption, SignalOption {
  /** Seconds to long-poll until the job finishes; the job is returned either way. */
  wait?: number;
}

export interface ListJobsOptions extends QueueOption, SignalOption {
  status?: JobStatus;
  function?: string;
  /** Only jobs whose deduplication `key` starts with this. */
  keyPrefix?: string;
  /** Jobs per page, 1..1000 (default 100). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface JobPage {
  jobs: Job[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** A worker the service saw on a queue in the last minute: one shape on every path. */
export interface WorkerInfo {
  id: string;
  /** Unix time it was last seen. */
  seen: number;
  /** The functions it runs. */
  functions: string[];
  /** Jobs it runs at once. */
  concurrency: number;
  /** Jobs it ran when last seen. */
  running: number;
  host: string;
  pid: number;
  /** `http`, `grpc`, `grpc-stream`, or empty for a worker straight on a store. */
  transport: string;
}

export interface QueueInfo {
  name: string;
  counts: Record<JobStatus, number>;
  scheduled: number;
  workers: WorkerInfo[];
  /** Jobs finished per second over the last five minutes. */
  finishedPerS: number;
  /** While true, no job of the queue is leased (running ones finish; enqueue works). */
  paused: boolean;
  /** The queue's limits. */
  settings: QueueSettings;
}

export interface QueueSummary {
  name: string;
  counts: Record<JobStatus, number>;
}

/** What a renewed lease turned out to be. */
export type LeaseState = "active" | "aborting" | "lost";

export interface LeaseOptions extends QueueOption, SignalOption {
  workerId: string;
  /** Most jobs to take (1..1000, default 1). */
  max?: number;
  /** Seconds to hold the request open when nothing is due (default 0). */
  wait?: number;
  /** Function names, recorded as worker info. */
  functions?: string[];
  /** Lease length for jobs without a heartbeat (service default: 30 s). */
  leaseS?: number;
}

export interface LeaseReply {
  jobs: LeasedJob[];
  /** Seconds until the next scheduled job is due, or null. */
  nextDueS: number | null;
}

export interface LeaseRef {
  jobId: string;
  lease: string;
}

/** How one attempt ended, for `settle`. `queued` without an `error` hands an unstarted job
 * back: the store gives its attempt back. */
export interface Outcome extends LeaseRef {
  status: "complete" | "failed" | "aborted" | "queued";
  /** For metrics labels. */
  function?: string;
  result?: unknown;
  error?: Partial<ErrorInfo>;
  /** With `queued`: seconds before the job may run again. */
  delayS?: number;
  runS?: number;
}

// -- flow control ------------------------------------------------------------------------

/** At most `limit` jobs start in any window of `periodS` seconds (a sliding window). */
export interface Rate {
  limit: number;
  /** The window in seconds, > 0 and <= 86400 (default 1). */
  periodS?: number;
}

/** Limits on the jobs of one function, across every worker. */
export interface FunctionLimits {
  /** Jobs of the function active at once. */
  maxActive?: number;
  /** Jobs of the function started per window. */
  rate?: Rate;
}

/**
 * A queue's limits, across every worker of every language; each left out is no limit.
 * The store enforces them where jobs are leased. Limits are 1..1,000,000,000.
 */
export interface QueueSettings {
  /** Jobs of the queue active at once. */
  maxActive?: number;
  /** Jobs active at once per `concurrencyKey` (jobs without a key are not counted). */
  maxActivePerKey?: number;
  /** Jobs of the queue started per window. */
  rate?: Rate;
  /** Jobs started per window per `concurrencyKey`. */
  ratePerKey?: Rate;
  /** Limits per function name. */
  functions?: Record<string, FunctionLimits>;
}

/** Whether a queue is paused, as pause and resume answer. */
export interface QueueState {
  queue: string;
  paused: boolean;
}

/** A queue's limits and pause state, as the settings calls answer. */
export interface QueueSettingsReply extends QueueState {
  settings: QueueSettings;
}

/**
 * Which jobs of a queue a bulk call takes; each field left out matches every job, so `{}`
 * takes them all.
 */
export interface JobFilter {
  /** Only jobs in this status. */
  status?: JobStatus;
  /** Only jobs of this function. */
  function?: string;
  /** Only jobs whose deduplication `key` starts with this. */
  keyPrefix?: string;
  /** Only jobs created before this time (Unix seconds, or a Date). */
  enqueuedBefore?: number | Date;
  /** Only jobs created at or after this time (Unix seconds, or a Date). */
  enqueuedAfter?: number | Date;
}
