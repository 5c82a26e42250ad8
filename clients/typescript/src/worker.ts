/**
 * `Worker`: leases jobs from a Jobwire service and runs async handlers for them, with
 * bounded concurrency, batched lease renewal, aborts, timeouts and a graceful stop.
 */

import { hostname } from "node:os";
import { randomUUID } from "node:crypto";

import type { Client } from "./client.js";
import { Forbidden, StaleLease, Unauthenticated } from "./errors.js";
import { sleep } from "./http.js";
import type { ErrorInfo, LeasedJob, Outcome } from "./types.js";

/** What a handler gets besides the job's kwargs. */
export interface JobContext {
  /** The leased job (id, attempts, options...). */
  readonly job: LeasedJob;
  /** Aborted when the job is aborted, times out, loses its lease or the worker stops. */
  readonly signal: AbortSignal;
  readonly worker: Worker;
  /** The queue's name. */
  readonly queue: string;
  /** Store progress (0..1) and/or merge keys into the job's meta. */
  update(update: { progress?: number; meta?: Record<string, unknown> }): Promise<void>;
}

/** A task: an async function of the job's kwargs; its return value is the job's result. */
export type Handler<K = any, R = unknown> = (kwargs: K, ctx: JobContext) => Promise<R> | R;

/** Where the worker reports problems (default: `console`). */
export interface WorkerLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface WorkerOptions {
  /** Handlers by function name. */
  functions: Record<string, Handler>;
  /** The queue to work (default: the client's). */
  queue?: string;
  /** Jobs run at once (default 10). */
  concurrency?: number;
  /** Lease length in seconds for jobs without their own heartbeat (default 30). */
  leaseS?: number;
  /** Seconds each lease request long-polls when nothing is due (default 1). */
  leaseWaitS?: number;
  /** Longest interval between lease renewals, in seconds (default 0.5). */
  renewIntervalS?: number;
  /** On stop, seconds running jobs get to finish before they are requeued (default 10). */
  shutdownGraceS?: number;
  /** Stop gracefully on SIGTERM and SIGINT (default false). */
  handleSignals?: boolean;
  /** Worker id (default: host, pid and a random suffix). */
  id?: string;
  /** Where to log; `null` for silence (default `console`). */
  logger?: WorkerLogger | null;
}

type CancelReason = "abort" | "timeout" | "lost" | "shutdown";

class Cancelled extends Error {}

/** A resettable flag to wait on (like asyncio.Event). */
class Flag {
  private isSet = false;
  private waiters: (() => void)[] = [];

  set(): void {
    this.isSet = true;
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  clear(): void {
    this.isSet = false;
  }

  wait(): Promise<void> {
    return this.isSet ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

class Attempt {
  readonly controller = new AbortController();
  reason: CancelReason | undefined;
  done: Promise<void> = Promise.resolve();
  readonly cancelled: Promise<never>;

  constructor(readonly job: LeasedJob) {
    this.cancelled = new Promise<never>((_, reject) => {
      this.controller.signal.addEventListener("abort", () => reject(new Cancelled()), {
        once: true,
      });
    });
    this.cancelled.catch(() => undefined); // observed through Promise.race only
  }

  cancel(reason: CancelReason): void {
    if (this.reason === undefined) {
      this.reason = reason;
      this.controller.abort(new Cancelled(`job ${this.job.id}: ${reason}`));
    }
  }
}

const HARD_STOP_MS = 5000;
const FAIL_REPORT_TRIES = 5;

export class Worker {
  readonly id: string;
  readonly queue: string;
  readonly concurrency: number;
  private readonly client: Client;
  private readonly functions: Map<string, Handler>;
  private readonly leaseS: number;
  private readonly leaseWaitS: number;
  private readonly renewIntervalS: number;
  private readonly shutdownGraceS: number;
  private readonly handleSignals: boolean;
  private readonly log: WorkerLogger;
  private readonly attempts = new Map<string, Attempt>();
  private readonly reports = new Set<Promise<void>>();
  private outcomes: Outcome[] = [];
  private readonly outcomeReady = new Flag();
  private readonly slotFree = new Flag();
  private readonly stopController = new AbortController();
  private closing = false;
  private abandoned = false; // closing, and out of time to settle what is left
  private started = false;
  private stoppedPromise: Promise<void> | undefined;

  constructor(client: Client, options: WorkerOptions) {
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be an integer >= 1, got ${concurrency}`);
    }
    this.client = client;
    this.queue = options.queue ?? client.queue;
    this.functions = new Map(Object.entries(options.functions));
    this.concurrency = concurrency;
    this.leaseS = options.leaseS ?? 30;
    this.leaseWaitS = options.leaseWaitS ?? 1;
    this.renewIntervalS = options.renewIntervalS ?? 0.5;
    this.shutdownGraceS = options.shutdownGraceS ?? 10;
    this.handleSignals = options.handleSignals ?? false;
    this.id = options.id ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
    this.log = options.logger === null ? silent : (options.logger ?? console);
  }

  /** Jobs running now. */
  get running(): number {
    return this.attempts.size;
  }

  /** Whether `stop()` was called (or a signal came). */
  get stopping(): boolean {
    return this.stopController.signal.aborted;
  }

  /**
   * Run until `stop()`: lease jobs, run their handlers, renew their leases, report
   * their outcomes. Resolves once stopped; rejects with `Unauthenticated` or `Forbidden`
   * (after one log line and a graceful stop) when the service refuses the token, since
   * retrying cannot help. While the service is unreachable it backs off, logging once
   * per change of state.
   */
  start(): Promise<void> {
    if (this.started) throw new Error("a Worker can be started once");
    this.started = true;
    this.stoppedPromise = this.run();
    return this.stoppedPromise;
  }

  /**
   * Stop gracefully: take no more jobs, let running ones finish within the grace
   * period, then cancel and requeue the rest. Safe to call more than once.
   */
  async stop(): Promise<void> {
    if (!this.stopping) this.stopController.abort();
    this.slotFree.set();
    if (this.stoppedPromise) await this.stoppedPromise.catch(() => undefined);
  }

  private async run(): Promise<void> {
    const onSignal = (signal: NodeJS.Signals): void => {
      this.log.info(`worker ${this.id} got ${signal}: stopping gracefully`);
      void this.stop();
    };
    if (this.handleSignals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    const renewStop = new AbortController();
    const renewer = this.renewLoop(renewStop.signal);
    const settler = this.settleLoop();
    try {
      await this.leaseLoop();
    } finally {
      await this.drain();
      this.closing = true;
      this.outcomeReady.set();
      await withTimeout(settler, HARD_STOP_MS, () => {
        this.abandoned = true; // the settle loop ends after its current try
        this.log.error(`worker ${this.id}: could not settle ${this.outcomes.length} outcomes`);
      });
      await withTimeout(Promise.allSettled([...this.reports]), HARD_STOP_MS, () =>
        this.log.error(`worker ${this.id}: could not report ${this.reports.size} failures`),
      );
      renewStop.abort();
      await renewer;
      if (this.handleSignals) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
    }
  }

  private async leaseLoop(): Promise<void> {
    const functions = [...this.functions.keys()].sort();
    let failures = 0;
    let failing = "";
    while (!this.stopping) {
      const free = this.concurrency - this.attempts.size;
      if (free <= 0) {
        await this.slotFree.wait();
        this.slotFree.clear();
        continue;
      }
      let jobs: LeasedJob[];
      try {
        ({ jobs } = await this.client.lease({
          queue: this.queue,
          workerId: this.id,
          max: free,
          wait: this.leaseWaitS,
          functions,
          leaseS: this.leaseS,
        }));
        if (failures > 0) this.log.info(`worker ${this.id}: leasing works again after ${failures} failed tries`);
        failures = 0;
        failing = "";
      } catch (error) {
        if (error instanceof Unauthenticated || error instanceof Forbidden) {
          this.log.error(`worker ${this.id} stops: the service refused its token: ${describe(error)}`);
          this.stopController.abort();
          throw error;
        }
        failures++;
        if (describe(error) !== failing) {
          failing = describe(error);
          this.log.error(`worker ${this.id}: leasing failed (${failing}); retrying until it works`);
        }
        const delay = Math.min(100 * 2 ** failures, 5000);
        await sleep(delay, this.stopController.signal).catch(() => undefined);
        continue;
      }
      if (this.stopping) {
        this.handBack(jobs);
        return;
      }
      for (const job of jobs) this.startAttempt(job);
    }
  }

  /** Requeue jobs leased while a stop was requested (none of them started). */
  private handBack(jobs: LeasedJob[]): void {
    for (const job of jobs) this.push({ jobId: job.id, lease: job.lease, status: "queued" });
  }

  private startAttempt(job: LeasedJob): void {
    const attempt = new Attempt(job);
    this.attempts.set(job.id, attempt);
    attempt.done = this.process(attempt)
      .catch((error: unknown) => {
        this.log.error(`worker ${this.id}: job ${job.id}: ${describe(error)}`);
      })
      .finally(() => {
        this.attempts.delete(job.id);
        this.slotFree.set();
      });
  }

  private async process(attempt: Attempt): Promise<void> {
    const { job } = attempt;
    const handler = this.functions.get(job.function);
    if (handler === undefined) {
      const error = {
        type: "UnknownFunction",
        message: `worker ${this.id} has no function '${job.function}'`,
      };
      this.reportFailure(job, error, false, 0);
      return;
    }
    const ctx: JobContext = {
      job,
      signal: attempt.controller.signal,
      worker: this,
      queue: this.queue,
      update: async ({ progress, meta }) => {
        const reply = await this.client.heartbeat(
          { jobId: job.id, lease: job.lease },
          { queue: this.queue, ...(progress !== undefined ? { progress } : {}), ...(meta ? { meta } : {}) },
        );
        if (reply.aborted) attempt.cancel("abort");
      },
    };
    const started = performance.now();
    const timer =
      job.timeout !== null && job.timeout > 0
        ? setTimeout(() => attempt.cancel("timeout"), job.timeout * 1000)
        : undefined;
    try {
      const running = Promise.resolve().then(() => handler(job.kwargs, ctx));
      running.catch(() => undefined); // a handler still running after a cancel may reject
      const result: unknown = await Promise.race([running, attempt.cancelled]);
      JSON.stringify(result ?? null); // fail here, visibly, if the result cannot be stored
      this.push({
        jobId: job.id,
        lease: job.lease,
        status: "complete",
        function: job.function,
        result: result ?? null,
        runS: elapsedS(started),
      });
    } catch (error) {
      const runS = elapsedS(started);
      switch (attempt.reason) {
        case undefined:
          this.reportFailure(job, errorInfo(error), true, runS);
          break;
        case "timeout":
          this.reportFailure(
            job,
            { type: "TimeoutError", message: `job timed out after ${job.timeout} s` },
            true,
            runS,
          );
          break;
        case "abort":
          this.push({ jobId: job.id, lease: job.lease, status: "aborted", function: job.function, runS });
          break;
        case "shutdown":
          this.log.info(`worker ${this.id}: job ${job.id} requeued on shutdown`);
          this.push({
            jobId: job.id,
            lease: job.lease,
            status: "queued",
            function: job.function,
            error: { type: "WorkerStopped", message: "the worker stopped during this attempt" },
          }); // it ran: the error marks the attempt as counted
          break;
        case "lost":
          this.log.warn(`worker ${this.id}: job ${job.id} lost its lease; result dropped`);
          break;
      }
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  private push(outcome: Outcome): void {
    this.outcomes.push(outcome);
    this.outcomeReady.set();
  }

  /** Failures go through POST /v1/jobs/{id}/fail: the service applies the retry policy. */
  private reportFailure(
    job: LeasedJob,
    error: Partial<ErrorInfo>,
    retryable: boolean,
    runS: number,
  ): void {
    const report = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.client.fail({ jobId: job.id, lease: job.lease }, error, {
            queue: this.queue,
            retryable,
            runS,
          });
          return;
        } catch (failure) {
          if (failure instanceof StaleLease) {
            this.log.warn(`worker ${this.id}: job ${job.id}: lease lost; failure dropped`);
            return;
          }
          if (attempt >= FAIL_REPORT_TRIES) {
            this.log.error(`worker ${this.id}: job ${job.id}: reporting failure: ${describe(failure)}`);
            return;
          }
          await sleep(200 * attempt);
        }
      }
    })();
    this.reports.add(report);
    void report.finally(() => this.reports.delete(report));
  }

  /** Group commit: whatever finished while the last batch was in flight goes next. */
  private async settleLoop(): Promise<void> {
    for (;;) {
      await this.outcomeReady.wait();
      this.outcomeReady.clear();
      const batch = this.outcomes.splice(0, 1000);
      if (this.outcomes.length > 0) this.outcomeReady.set();
      if (batch.length > 0) {
        try {
          const settled = await this.client.settle(batch, { queue: this.queue });
          settled.forEach((done, i) => {
            if (!done) {
              const o = batch[i];
              this.log.warn(`worker ${this.id}: job ${o?.jobId}: lease lost; ${o?.status} dropped`);
            }
          });
        } catch (error) {
          this.log.error(`worker ${this.id}: settling ${batch.length} outcomes failed: ${describe(error)}`);
          this.outcomes.unshift(...batch);
          this.outcomeReady.set();
          await sleep(500);
          if (this.abandoned) return;
          continue;
        }
      }
      if (this.closing && this.outcomes.length === 0) return;
    }
  }

  private async renewLoop(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      try {
        await sleep(this.renewIntervalMs(), stop);
      } catch {
        return;
      }
      const attempts = [...this.attempts.values()].filter((a) => a.reason === undefined);
      if (attempts.length === 0) continue;
      try {
        const states = await this.client.renew(
          attempts.map((a) => ({ jobId: a.job.id, lease: a.job.lease })),
          { queue: this.queue, leaseS: this.leaseS },
        );
        states.forEach((state, i) => {
          const attempt = attempts[i];
          if (attempt === undefined) return;
          if (state === "aborting") attempt.cancel("abort");
          else if (state === "lost") attempt.cancel("lost");
        });
      } catch (error) {
        this.log.error(`worker ${this.id}: renewing ${attempts.length} leases failed: ${describe(error)}`);
      }
    }
  }

  private renewIntervalMs(): number {
    let seconds = this.renewIntervalS;
    for (const attempt of this.attempts.values()) {
      const lease = attempt.job.heartbeat > 0 ? attempt.job.heartbeat : this.leaseS;
      seconds = Math.min(seconds, lease / 3);
    }
    return seconds * 1000;
  }

  /** Let running jobs finish within the grace period, then cancel and requeue them. */
  private async drain(): Promise<void> {
    const running = [...this.attempts.values()];
    if (running.length === 0) return;
    this.log.info(`worker ${this.id}: waiting up to ${this.shutdownGraceS} s for ${running.length} jobs`);
    const all = Promise.all(running.map((a) => a.done));
    await withTimeout(all, this.shutdownGraceS * 1000);
    for (const attempt of running) attempt.cancel("shutdown");
    await all; // a cancelled attempt ends at once (its handler is no longer awaited)
  }
}

const silent: WorkerLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

function elapsedS(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}

function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    return { type: error.name || "Error", message: error.message, traceback: error.stack ?? "" };
  }
  return { type: "Error", message: String(error), traceback: "" };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Wait for `promise` at most `ms`; calls `onTimeout` if time ran out first. */
async function withTimeout(promise: Promise<unknown>, ms: number, onTimeout?: () => void): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
  });
  const timedOut = await Promise.race([promise.then(() => false, () => false), expired]);
  clearTimeout(timer);
  if (timedOut && onTimeout) onTimeout();
}
