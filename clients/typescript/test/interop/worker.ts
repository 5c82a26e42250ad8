/**
 * A Node worker for the cross-language tests (tests/clients/test_typescript.py):
 * `node build/interop/worker.js QUEUE [CONCURRENCY]` with JOBWIRE_URL (and JOBWIRE_TOKEN).
 * Prints one JSON line per event on stdout: ready, ran (per handler call), stopped.
 * SIGTERM stops it gracefully.
 */

import { setTimeout as delay } from "node:timers/promises";

import { Client, Worker, type Handler } from "../../dist/index.js";

const [queue, concurrency = "4"] = process.argv.slice(2);
if (!queue) throw new Error("usage: worker.js QUEUE [CONCURRENCY]");

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const functions: Record<string, Handler> = {
  add: ({ a, b }: { a: number; b: number }) => a + b,
  describe: (kwargs: Record<string, unknown>, ctx) => ({
    by: "node",
    attempts: ctx.job.attempts,
    kwargs,
  }),
  boom: ({ message }: { message: string }) => {
    throw new RangeError(message);
  },
  flaky: (_: unknown, ctx) => {
    if (ctx.job.attempts < 2) throw new Error(`attempt ${ctx.job.attempts} fails`);
    return `ok on attempt ${ctx.job.attempts}`;
  },
  wait_for_abort: async (_: unknown, ctx) => {
    emit({ event: "ran", job: ctx.job.id, function: "wait_for_abort" });
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    emit({ event: "abort_seen", job: ctx.job.id });
    return "aborted";
  },
  record: async ({ i, ms }: { i: number; ms: number }, ctx) => {
    emit({ event: "ran", job: ctx.job.id, function: "record", i });
    await delay(ms);
    return { by: "node", i };
  },
};

const worker = new Worker(new Client({ queue }), {
  functions,
  concurrency: Number(concurrency),
  handleSignals: true,
  leaseWaitS: 0.5,
  shutdownGraceS: 5,
});
emit({ event: "ready", id: worker.id });
await worker.start();
emit({ event: "stopped" });
