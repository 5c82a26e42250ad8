/** The HTTP transport: JSON in and out, bearer token, typed errors, retries with backoff. */

import { ConnectionFailed, JobwireError, errorFromResponse } from "./errors.js";

export interface RetryPolicy {
  /** Retries after the first try (default 4). */
  retries: number;
  /** First backoff, in ms; it doubles each retry and is jittered into [d/2, d] (default 100). */
  baseDelayMs: number;
  /** Longest backoff, in ms (default 2000). */
  maxDelayMs: number;
}

export interface TransportOptions {
  /** Base URL; a password in it (`http://:TOKEN@host:8080`) is taken as the token. */
  url: string;
  token?: string;
  retry: RetryPolicy;
  /** Per-request timeout in ms, on top of any long-poll wait (default 30000). */
  requestTimeoutMs: number;
  fetch: typeof fetch;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Safe to send again after a 502/503/504 or a dropped connection. */
  idempotent: boolean;
  /** Extra ms the request may take (a long-poll's wait). */
  extraTimeoutMs?: number;
  /** No overall timeout (event streams). */
  noTimeout?: boolean;
  signal?: AbortSignal;
  accept?: string;
}

const RETRY_STATUSES = new Set([502, 503, 504]);
/** Errors where the request provably never reached the service: safe to retry any call. */
const NEVER_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH"]);

export class Transport {
  readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly options: TransportOptions;

  constructor(options: TransportOptions) {
    const url = new URL(options.url);
    const token = options.token ?? (url.password ? decodeURIComponent(url.password) : undefined);
    url.username = "";
    url.password = "";
    this.baseUrl = url.toString().replace(/\/+$/, "");
    this.headers = token ? { authorization: `Bearer ${token}` } : {};
    this.options = options;
  }

  /** Send a request and parse its JSON reply (undefined for an empty body). */
  async json<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const response = await this.send(method, path, options);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Send a request, retrying as the policy allows; a non-2xx reply is thrown as an error. */
  async send(method: string, path: string, options: RequestOptions): Promise<Response> {
    const { retries } = this.options.retry;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.once(method, path, options);
      } catch (error) {
        if (error instanceof ConnectionFailed && attempt < retries) {
          const code = networkCode(error.cause);
          if (options.idempotent || (code !== undefined && NEVER_SENT.has(code))) {
            await sleep(this.backoffMs(attempt), options.signal);
            continue;
          }
        }
        throw error;
      }
      if (response.ok) return response;
      const text = await response.text();
      if (options.idempotent && RETRY_STATUSES.has(response.status) && attempt < retries) {
        await sleep(this.backoffMs(attempt), options.signal);
        continue;
      }
      throw errorFromResponse(response.status, text);
    }
  }

  private async once(method: string, path: string, options: RequestOptions): Promise<Response> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { ...this.headers, accept: options.accept ?? "application/json" };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = "application/json";
    }
    // A stream (no timeout) follows the caller's signal for its whole life; any other
    // request gets its own controller, aborted by the caller's signal or the timeout.
    const controller = new AbortController();
    const timeoutMs = this.options.requestTimeoutMs + (options.extraTimeoutMs ?? 0);
    let timedOut = false;
    const timer = options.noTimeout
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs);
    const onAbort = (): void => controller.abort(options.signal?.reason);
    if (!options.noTimeout) options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      options.signal?.throwIfAborted();
      const signal = options.noTimeout ? options.signal : controller.signal;
      const init: RequestInit = { method, headers };
      if (signal !== undefined) init.signal = signal;
      if (body !== undefined) init.body = body;
      const response = await this.options.fetch(url, init);
      if (options.noTimeout) return response;
      // Read the body under the same timeout, then hand back a buffered response.
      const buffered = await response.arrayBuffer();
      return new Response(buffered.byteLength ? buffered : null, {
        status: response.status,
        headers: response.headers,
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason ?? error;
      if (error instanceof JobwireError) throw error;
      const what = timedOut ? `timed out after ${timeoutMs} ms` : describe(error);
      throw new ConnectionFailed(`${method} ${url.pathname}: ${what}`, {
        code: timedOut ? "timeout" : "connection",
        cause: error,
      });
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  private backoffMs(attempt: number): number {
    const { baseDelayMs, maxDelayMs } = this.options.retry;
    const delay = Math.min(baseDelayMs * 2 ** attempt, maxDelayMs);
    return delay / 2 + Math.random() * (delay / 2);
  }
}

/** The system error code (`ECONNREFUSED`, ...) somewhere in an error's cause chain. */
export function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function describe(error: unknown): string {
  const code = networkCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code ? `${message} (${code})` : message;
}

/** Resolve after `ms`, or reject at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
