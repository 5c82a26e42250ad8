/** Typed errors: the service's `{"error": {"code", "message"}}` becomes one of these. */

import type { Job } from "./types.js";

export interface JobwireErrorInit {
  /** The service's error code (`"not_found"`, `"stale_lease"`, ...). */
  code?: string;
  /** The HTTP status (0 when no response came back). */
  status?: number;
  /** Extra fields of the error body (`details` of a validation error). */
  details?: unknown;
  cause?: unknown;
}

/** Base class of every error this client throws on purpose. */
export class JobwireError extends Error {
  /** The service's stable error code. */
  readonly code: string;
  /** The HTTP status, 0 when none. */
  readonly status: number;
  readonly details: unknown;

  constructor(message: string, init: JobwireErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = init.code ?? "internal";
    this.status = init.status ?? 0;
    this.details = init.details;
  }
}

/** 404 `not_found`: no such job (never was, or its ttl ran out). */
export class JobNotFound extends JobwireError {}
/** 409 `invalid_state`: the job's status does not allow this (e.g. retrying a live job). */
export class InvalidJobState extends JobwireError {}
/** 409 `stale_lease`: the lease no longer owns the job's current attempt. */
export class StaleLease extends JobwireError {}
/** 400 `invalid_request`: malformed request or option out of range. */
export class InvalidRequest extends JobwireError {}
/** 413 `payload_too_large`. */
export class PayloadTooLarge extends JobwireError {}
/** 401 `unauthenticated`: no token, or one the service does not know. */
export class Unauthenticated extends JobwireError {}
/** 403 `forbidden`: the token's role does not allow this request. */
export class Forbidden extends JobwireError {}
/** 503 (`not_ready`, or a proxy's): the service cannot serve now. */
export class ServiceUnavailable extends JobwireError {}
/** The request never got an answer (connection refused or reset, DNS, timeout). */
export class ConnectionFailed extends JobwireError {}

/** `apply` or a worker saw the job end `failed`; `job.error` says why. */
export class JobFailed extends JobwireError {
  readonly job: Job;

  constructor(job: Job) {
    const detail = job.error ? `${job.error.type}: ${job.error.message}` : "unknown error";
    super(`job ${job.id} (${job.function}) failed: ${detail}`, { code: "job_failed" });
    this.job = job;
  }
}

/** `apply` saw the job end `aborted`. */
export class JobAborted extends JobwireError {
  readonly job: Job;

  constructor(job: Job) {
    const reason = job.error ? job.error.message : "aborted";
    super(`job ${job.id} (${job.function}) aborted: ${reason}`, { code: "job_aborted" });
    this.job = job;
  }
}

/** A wait ran out before the job finished (the job keeps going). */
export class WaitTimeout extends JobwireError {
  readonly job: Job;

  constructor(job: Job, seconds: number) {
    super(`job ${job.id} still ${job.status} after ${seconds} s`, { code: "wait_timeout" });
    this.job = job;
  }
}

type ErrorClass = new (message: string, init?: JobwireErrorInit) => JobwireError;

const BY_CODE: Record<string, ErrorClass> = {
  not_found: JobNotFound,
  invalid_state: InvalidJobState,
  stale_lease: StaleLease,
  invalid_request: InvalidRequest,
  payload_too_large: PayloadTooLarge,
  unauthenticated: Unauthenticated,
  forbidden: Forbidden,
  not_ready: ServiceUnavailable,
};

const BY_STATUS: Record<number, ErrorClass> = {
  400: InvalidRequest,
  401: Unauthenticated,
  403: Forbidden,
  404: JobNotFound,
  413: PayloadTooLarge,
  502: ServiceUnavailable,
  503: ServiceUnavailable,
  504: ServiceUnavailable,
};

/** The error a non-2xx response stands for (by the body's code, else by the status). */
export function errorFromResponse(status: number, text: string): JobwireError {
  let code: string | undefined;
  let message: string | undefined;
  let details: unknown;
  try {
    const body: unknown = JSON.parse(text);
    const error = (body as { error?: unknown }).error;
    if (error && typeof error === "object") {
      const fields = error as Record<string, unknown>;
      if (typeof fields.code === "string") code = fields.code;
      if (typeof fields.message === "string") message = fields.message;
      details = fields.details;
    }
  } catch {
    // not JSON: a proxy's page, say
  }
  const cls = (code !== undefined ? BY_CODE[code] : undefined) ?? BY_STATUS[status] ?? JobwireError;
  return new cls(`${message ?? (text.slice(0, 500) || "no body")} (HTTP ${status})`, {
    code: code ?? (status === 503 ? "unavailable" : "http_error"),
    status,
    details,
  });
}
