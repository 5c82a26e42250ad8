/**
 * A Node client for the cross-language tests (tests/clients/test_typescript.py):
 * `node build/interop/client.js QUEUE` with JOBWIRE_URL (and JOBWIRE_TOKEN), while a
 * Python worker serves QUEUE with the functions py_add, py_boom, py_progress, py_wait.
 * Prints one JSON object with what it saw.
 */

import { Client, JobFailed, type JobStatus } from "../../dist/index.js";

const [queue] = process.argv.slice(2);
if (!queue) throw new Error("usage: client.js QUEUE");
const client = new Client({ queue });
const report: Record<string, unknown> = {};

report.apply = await client.apply("py_add", { a: 2, b: 40 }, { waitTimeout: 20 });

const batch = await client.enqueueBatch(
  [1, 2, 3, 4, 5].map((i) => ({ function: "py_add", kwargs: { a: i, b: i } })),
);
const results = [];
for (const job of batch) results.push((await client.getJob(job.id, { wait: 20 })).result);
report.batch = results;
report.batchIds = batch.map((job) => job.id);

try {
  await client.apply("py_boom", { message: "from node" }, { retries: 1, waitTimeout: 20 });
  report.boom = "no error";
} catch (error) {
  if (!(error instanceof JobFailed)) throw error;
  report.boom = {
    code: error.code,
    status: error.job.status,
    attempts: error.job.attempts,
    type: error.job.error?.type,
    message: error.job.error?.message,
  };
}

const watched = await client.enqueue("py_progress", {}, { key: `progress-${queue}` });
const statuses: JobStatus[] = [];
const progress: number[] = [];
for await (const job of client.watchJob(watched.id)) {
  statuses.push(job.status);
  progress.push(job.progress);
}
report.watch = { statuses, progress, result: (await client.getJob(watched.id)).result };

const waiting = await client.enqueue("py_wait", {}, { timeout: 30 });
for (let i = 0; i < 200 && (await client.getJob(waiting.id)).status !== "active"; i++) {
  await new Promise((resolve) => setTimeout(resolve, 25));
}
await client.abort(waiting.id, { error: "node says stop" });
const aborted = await client.getJob(waiting.id, { wait: 20 });
report.abort = { status: aborted.status, message: aborted.error?.message };

process.stdout.write(`${JSON.stringify(report)}\n`);
