/** The Worker against a real `jobwire serve`: results, retries, aborts, timeouts, stops. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";

import {
  JobFailed,
  Unauthenticated,
  Worker,
  type Client,
  type Handler,
  type Job,
  type JobContext,
  type WorkerOptions,
} from "../dist/index.js";
import { makeClient, until } from "./helpers.js";

/** Run `body` with a started worker, and stop the worker after it (whatever happens). */
async function withWorker(
  client: Client,
  functions: Record<string, Handler>,
  body: (worker: Worker) => Promise<void>,
  options: Partial<WorkerOptions> = {},
): Promise<void> {
  const worker = new Worker(client, { functions, logger: null, leaseWaitS: 0.5, ...options });
  const running = worker.start();
  try {
    await body(worker);
  } finally {
    await worker.stop();
    await running;
  }
}

async function finished(client: Client, id: string): Promise<Job> {
  const job = await client.getJob(id, { wait: 15 });
  assert.ok(["complete", "failed", "aborted"].includes(job.status), `job still ${job.status}`);
  return job;
}

/** Resolves when `signal` aborts (or after `ms`, to keep a broken test from hanging). */
function aborted(signal: AbortSignal, ms = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe("Worker", () => {
  test("runs handlers by function name and settles their results", async () => {
    const client = makeClient();
    const seen: string[] = [];
    const functions: Record<string, Handler> = {
      add: async ({ a, b }: { a: number; b: number }, ctx) => {
        seen.push(ctx.job.id);
        assert.equal(ctx.queue, client.queue);
        return a + b;
      },
      nothing: () => undefined,
    };
    await withWorker(client, functions, async (worker) => {
      assert.equal(await client.apply("add", { a: 2, b: 3 }, { waitTimeout: 10 }), 5);
      const jobs = await client.enqueueBatch(
        Array.from({ length: 20 }, (_, i) => ({ function: "add", kwargs: { a: i, b: 1 } })),
      );
      for (const [i, job] of jobs.entries()) {
        const done = await finished(client, job.id);
        assert.equal(done.status, "complete");
        assert.equal(done.result, i + 1);
        assert.equal(done.attempts, 1);
        assert.equal(done.worker, worker.id);
      }
      assert.equal(await client.apply("nothing", {}, { waitTimeout: 10 }), null);
      const info = await client.queueInfo();
      assert.ok(info.workers.some((w) => w.id === worker.id), "the service saw the worker");
    });
    assert.equal(seen.length, 21);
    assert.equal(new Set(seen).size, 21);
  });

  test("runs at most `concurrency` jobs at once", async () => {
    const client = makeClient();
    let now = 0;
    let peak = 0;
    const functions = {
      slow: async () => {
        now++;
        peak = Math.max(peak, now);
        await delay(80);
        now--;
      },
    };
    await withWorker(
      client,
      functions,
      async () => {
        const jobs = await client.enqueueBatch(Array.from({ length: 12 }, () => ({ function: "slow" })));
        for (const job of jobs) assert.equal((await finished(client, job.id)).status, "complete");
      },
      { concurrency: 3 },
    );
    assert.equal(peak, 3);
  });

  test("a failing handler is retried by the service, then fails with its error", async () => {
    const client = makeClient();
    let calls = 0;
    const functions = {
      boom: () => {
        calls++;
        throw new TypeError("bad input");
      },
      flaky: (_: unknown, ctx: { job: Job }) => {
        if (ctx.job.attempts < 3) throw new Error(`attempt ${ctx.job.attempts}`);
        return "third time lucky";
      },
    };
    await withWorker(client, functions, async () => {
      const error = await client.apply("boom", {}, { retries: 2, waitTimeout: 15 }).catch((e: unknown) => e);
      assert.ok(error instanceof JobFailed, String(error));
      assert.equal(error.job.status, "failed");
      assert.equal(error.job.attempts, 3);
      assert.equal(error.job.error?.type, "TypeError");
      assert.equal(error.job.error?.message, "bad input");
      assert.match(error.job.error?.traceback ?? "", /worker\.test/);
      assert.equal(calls, 3);
      const job = await client.enqueue("flaky", {}, { retries: 5, retryDelay: 0.05 });
      const done = await finished(client, job.id);
      assert.equal(done.status, "complete");
      assert.equal(done.result, "third time lucky");
      assert.equal(done.attempts, 3);
    });
  });

  test("an unknown function fails at once, without retries", async () => {
    const client = makeClient();
    await withWorker(client, { known: () => 1 }, async () => {
      const job = await client.enqueue("unknown", {}, { retries: 3 });
      const done = await finished(client, job.id);
      assert.equal(done.status, "failed");
      assert.equal(done.attempts, 1);
      assert.equal(done.error?.type, "UnknownFunction");
    });
  });

  test("aborting a running job aborts the handler's signal and ends it aborted", async () => {
    const client = makeClient();
    let sawAbort: Promise<boolean> | undefined;
    const started: string[] = [];
    const functions = {
      wait: (_: unknown, ctx: { signal: AbortSignal; job: Job }) => {
        started.push(ctx.job.id);
        sawAbort = aborted(ctx.signal);
        return sawAbort;
      },
      stubborn: async () => {
        await delay(20_000, undefined, { ref: false }); // ignores its signal: settled without it
      },
    };
    await withWorker(client, functions, async () => {
      for (const fn of ["wait", "stubborn"]) {
        const job = await client.enqueue(fn);
        const active = async () => ((await client.getJob(job.id)).status === "active" ? true : undefined);
        await until(active, "the job to start");
        const began = Date.now();
        await client.abort(job.id, { error: "stop it" });
        const done = await finished(client, job.id);
        assert.equal(done.status, "aborted");
        assert.equal(done.error?.message, "stop it");
        assert.ok(Date.now() - began < 5000, `aborted after ${Date.now() - began} ms`);
      }
      assert.equal(await sawAbort, true);
    });
  });

  test("a job over its timeout fails with TimeoutError and its signal aborts", async () => {
    const client = makeClient();
    let sawAbort: Promise<boolean> | undefined;
    const functions = {
      hang: (_: unknown, ctx: { signal: AbortSignal }) => {
        sawAbort = aborted(ctx.signal);
        return sawAbort;
      },
    };
    await withWorker(client, functions, async () => {
      const job = await client.enqueue("hang", {}, { timeout: 0.3, retries: 1 });
      const done = await finished(client, job.id);
      assert.equal(done.status, "failed");
      assert.equal(done.attempts, 2, "a timeout is retryable");
      assert.equal(done.error?.type, "TimeoutError");
      assert.match(done.error?.message ?? "", /timed out after 0.3 s/);
      assert.equal(await sawAbort, true);
    });
  });

  test("a result that is not JSON fails the job; ctx.update stores progress and meta", async () => {
    const client = makeClient();
    const functions = {
      bigint: () => 10n,
      progress: async (_: unknown, ctx: JobContext) => {
        await ctx.update({ progress: 0.5, meta: { stage: "half" } });
        return "ok";
      },
    };
    await withWorker(client, functions, async () => {
      const bad = await finished(client, (await client.enqueue("bigint")).id);
      assert.equal(bad.status, "failed");
      assert.equal(bad.error?.type, "TypeError");
      const good = await finished(client, (await client.enqueue("progress")).id);
      assert.equal(good.status, "complete");
      assert.deepEqual(good.meta, { stage: "half" });
    });
  });

  test("stop lets running jobs finish within the grace period", async () => {
    const client = makeClient();
    const worker = new Worker(client, {
      functions: { short: async () => (await delay(300), "done") },
      logger: null,
      shutdownGraceS: 5,
    });
    const running = worker.start();
    const job = await client.enqueue("short");
    await until(() => (worker.running > 0 ? true : undefined), "the job to start");
    await worker.stop();
    await running;
    const after = await client.getJob(job.id);
    assert.equal(after.status, "complete");
    assert.equal(after.result, "done");
  });

  test("stop requeues jobs still running after the grace period; another worker runs them", async () => {
    const client = makeClient();
    let signalled: Promise<boolean> | undefined;
    const first = new Worker(client, {
      functions: {
        long: (_: unknown, ctx: { signal: AbortSignal }) => {
          signalled = aborted(ctx.signal);
          return signalled;
        },
      },
      logger: null,
      shutdownGraceS: 0.2,
    });
    const running = first.start();
    const job = await client.enqueue("long");
    await until(() => (first.running > 0 ? true : undefined), "the job to start");
    const began = Date.now();
    await first.stop();
    await running;
    assert.ok(Date.now() - began < 3000, `stop took ${Date.now() - began} ms`);
    assert.equal(await signalled, true);
    const requeued = await client.getJob(job.id);
    assert.equal(requeued.status, "queued");
    assert.equal(requeued.attempts, 1);
    await withWorker(client, { long: () => "second worker" }, async () => {
      const done = await finished(client, job.id);
      assert.equal(done.status, "complete");
      assert.equal(done.result, "second worker");
      assert.equal(done.attempts, 2);
    });
  });

  test("an idle worker stops promptly and cannot be started twice", async () => {
    const client = makeClient();
    const worker = new Worker(client, { functions: {}, logger: null, leaseWaitS: 0.5 });
    const running = worker.start();
    assert.throws(() => worker.start(), /started once/);
    await delay(100);
    const began = Date.now();
    await worker.stop();
    await running;
    assert.ok(Date.now() - began < 2000, `stop took ${Date.now() - began} ms`);
    assert.throws(() => new Worker(client, { functions: {}, concurrency: 0 }), RangeError);
  });

  test("a refused token stops the worker with one log line and rejects start()", async () => {
    const client = makeClient({ token: "not-a-token" });
    const lines: string[] = [];
    const logger = { info: () => undefined, warn: () => undefined, error: (m: string) => void lines.push(m) };
    const worker = new Worker(client, { functions: { f: async () => 1 }, logger, leaseWaitS: 0.1 });
    await assert.rejects(worker.start(), (error: unknown) => error instanceof Unauthenticated);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0] ?? "", /refused its token/);
    await worker.stop(); // safe after the refusal
  });
});
