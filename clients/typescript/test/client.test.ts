/** The Client against a real `jobwire serve` ($JOBWIRE_URL, admin token in $JOBWIRE_TOKEN). */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Client,
  Forbidden,
  InvalidJobState,
  InvalidRequest,
  JobNotFound,
  StaleLease,
  Unauthenticated,
  WaitTimeout,
  type Job,
  type JobStatus,
  type QueueSettings,
} from "../dist/index.js";
import { makeClient, roleTokens, serviceUrl, uniqueQueue } from "./helpers.js";

describe("enqueue", () => {
  test("maps every option to the REST field and returns the stored job", async () => {
    const client = makeClient();
    const scheduled = Math.floor(Date.now() / 1000) + 3600;
    const job = await client.enqueue(
      "send_email",
      { to: "a@example.com", n: [1, 2] },
      {
        timeout: 5,
        retries: 2,
        ttl: 30,
        heartbeat: 7,
        retryDelay: 1.5,
        retryBackoff: 10,
        priority: 9,
        scheduled: new Date(scheduled * 1000),
      },
    );
    assert.match(job.id, /^[0-9a-f]{32}$/);
    assert.equal(job.duplicate, false);
    const expected: Partial<Job> = {
      function: "send_email",
      kwargs: { to: "a@example.com", n: [1, 2] },
      queue: client.queue,
      status: "scheduled",
      timeout: 5,
      retries: 2,
      ttl: 30,
      heartbeat: 7,
      retryDelay: 1.5,
      retryBackoff: 10,
      priority: 9,
      scheduled,
      key: null,
      attempts: 0,
    };
    const stored = await client.getJob(job.id);
    for (const [field, value] of Object.entries(expected)) {
      assert.deepEqual(job[field as keyof Job], value, `enqueue reply: ${field}`);
      assert.deepEqual(stored[field as keyof Job], value, `stored job: ${field}`);
    }
  });

  test("takes the service's defaults for options left out", async () => {
    const client = makeClient();
    const job = await client.enqueue("noop");
    assert.equal(job.status, "queued");
    assert.deepEqual(job.kwargs, {});
    assert.equal(job.timeout, null);
    assert.equal(job.retries, 0);
    assert.equal(job.ttl, 600);
    assert.equal(job.retryBackoff, false);
  });

  test("a key dedupes while the job is live", async () => {
    const client = makeClient();
    const first = await client.enqueue("f", { i: 1 }, { key: "welcome-1" });
    const second = await client.enqueue("f", { i: 2 }, { key: "welcome-1" });
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.id, first.id);
    assert.deepEqual(second.kwargs, { i: 1 });
    await client.abort(first.id);
    const third = await client.enqueue("f", { i: 3 }, { key: "welcome-1" });
    assert.equal(third.duplicate, false);
    assert.notEqual(third.id, first.id);
  });

  test("an explicit id is kept, and a resend of it is a duplicate", async () => {
    const client = makeClient();
    const id = `my-id-${Date.now()}`;
    assert.equal((await client.enqueue("f", {}, { id })).id, id);
    const again = await client.enqueue("f", {}, { id });
    assert.equal(again.id, id);
    assert.equal(again.duplicate, true);
  });

  test("enqueueBatch keeps the order and flags duplicates", async () => {
    const client = makeClient();
    const jobs = await client.enqueueBatch([
      { function: "a", kwargs: { i: 0 }, key: "k" },
      { function: "b", kwargs: { i: 1 }, priority: 5 },
      { function: "c", key: "k" },
    ]);
    assert.deepEqual(
      jobs.map((j) => [j.function, j.duplicate]),
      [
        ["a", false],
        ["b", false],
        ["a", true],
      ],
    );
    assert.equal(jobs[2]?.id, jobs[0]?.id);
    assert.equal(jobs[1]?.priority, 5);
  });

  test("an out-of-range option is an InvalidRequest with the service's message", async () => {
    const client = makeClient();
    const error = await rejection(client.enqueue("f", {}, { priority: 5000 }));
    assert.ok(error instanceof InvalidRequest);
    assert.equal(error.code, "invalid_request");
    assert.equal(error.status, 400);
    assert.match(error.message, /priority/);
    assert.ok(Array.isArray(error.details));
  });
});

describe("reading and waiting", () => {
  test("getJob of an unknown id is JobNotFound", async () => {
    const client = makeClient();
    const error = await rejection(client.getJob("no-such-job"));
    assert.ok(error instanceof JobNotFound);
    assert.equal(error.code, "not_found");
    assert.equal(error.status, 404);
    assert.match(error.message, /no-such-job/);
  });

  test("getJob with wait long-polls and returns the unfinished job when time runs out", async () => {
    const client = makeClient();
    const job = await client.enqueue("nobody_runs_this");
    const started = Date.now();
    const again = await client.getJob(job.id, { wait: 0.6 });
    assert.ok(Date.now() - started >= 500, `returned after ${Date.now() - started} ms`);
    assert.equal(again.status, "queued");
  });

  test("getJob with wait returns as soon as the job finishes", async () => {
    const client = makeClient();
    const job = await client.enqueue("f");
    const waiting = client.getJob(job.id, { wait: 20 });
    const [leased] = (await client.lease({ workerId: "w", wait: 5 })).jobs;
    assert.ok(leased);
    await client.complete({ jobId: leased.id, lease: leased.lease }, { ok: true });
    const started = Date.now();
    const done = await waiting;
    assert.ok(Date.now() - started < 5000);
    assert.equal(done.status, "complete");
    assert.deepEqual(done.result, { ok: true });
  });

  test("apply with no worker ends in WaitTimeout carrying the job", async () => {
    const client = makeClient();
    const error = await rejection(client.apply("nobody_runs_this", {}, { waitTimeout: 0.3 }));
    assert.ok(error instanceof WaitTimeout);
    assert.equal(error.job.status, "queued");
  });

  test("listJobs pages with a cursor and filters by status and function", async () => {
    const client = makeClient();
    const ids = (
      await client.enqueueBatch(
        [0, 1, 2, 3, 4].map((i) => ({ function: i % 2 ? "odd" : "even", kwargs: { i } })),
      )
    ).map((j) => j.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const reply = await client.listJobs({ limit: 2, ...(cursor ? { cursor } : {}) });
      assert.ok(reply.jobs.length <= 2);
      seen.push(...reply.jobs.map((j) => j.id));
      if (reply.nextCursor === null) break;
      cursor = reply.nextCursor;
    }
    assert.deepEqual([...seen].sort(), [...ids].sort());
    const odd = await client.listJobs({ function: "odd", status: "queued" });
    assert.deepEqual(odd.jobs.map((j) => j.kwargs.i).sort(), [1, 3]);
    assert.equal(odd.nextCursor, null);
    assert.deepEqual((await client.listJobs({ status: "complete" })).jobs, []);
  });

  test("queueInfo and listQueues count jobs per status", async () => {
    const client = makeClient();
    await client.enqueueBatch([{ function: "a" }, { function: "b" }]);
    await client.enqueue("c", {}, { scheduled: Date.now() / 1000 + 600 });
    const info = await client.queueInfo();
    assert.equal(info.name, client.queue);
    assert.equal(info.counts.queued, 2);
    assert.equal(info.counts.scheduled, 1);
    assert.equal(info.scheduled, 1);
    assert.ok(Array.isArray(info.workers));
    assert.equal(typeof info.finishedPerS, "number");
    const queues = await client.listQueues();
    const mine = queues.find((q) => q.name === client.queue);
    assert.ok(mine, "the queue is listed");
    assert.equal(mine.counts.queued, 2);
  });

  test("watchJob streams the job's changes until it finishes", async () => {
    const client = makeClient();
    const job = await client.enqueue("f");
    const statuses: JobStatus[] = [];
    const progress: number[] = [];
    const watching = (async () => {
      for await (const change of client.watchJob(job.id)) {
        statuses.push(change.status);
        progress.push(change.progress);
      }
    })();
    const [leased] = (await client.lease({ workerId: "w", wait: 5 })).jobs;
    assert.ok(leased);
    const ref = { jobId: leased.id, lease: leased.lease };
    await client.heartbeat(ref, { progress: 0.5 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await client.complete(ref, 42);
    await watching;
    assert.equal(statuses.at(-1), "complete");
    assert.ok(statuses.includes("active"), `saw ${statuses.join(", ")}`);
    assert.ok(progress.includes(0.5), `saw progress ${progress.join(", ")}`);
  });

  test("breaking out of watchJob closes the stream", async () => {
    const client = makeClient();
    const job = await client.enqueue("f");
    for await (const change of client.watchJob(job.id)) {
      assert.equal(change.id, job.id);
      break;
    }
    const controller = new AbortController();
    const seen: JobStatus[] = [];
    setTimeout(() => controller.abort(), 200);
    const error = await rejection(
      (async () => {
        for await (const change of client.watchJob(job.id, { signal: controller.signal })) {
          seen.push(change.status);
        }
      })(),
    );
    assert.equal((error as Error).name, "AbortError");
    assert.deepEqual(seen, ["queued"]);
  });
});

describe("controlling", () => {
  test("abort a queued job, retry it, and refuse to retry a live one", async () => {
    const client = makeClient();
    const job = await client.enqueue("f");
    const aborted = await client.abort(job.id, { error: "changed my mind" });
    assert.equal(aborted.status, "aborted");
    assert.equal(aborted.error?.message, "changed my mind");
    const retried = await client.retry(job.id);
    assert.equal(retried.status, "queued");
    const error = await rejection(client.retry(job.id));
    assert.ok(error instanceof InvalidJobState);
    assert.equal(error.code, "invalid_state");
    assert.equal(error.status, 409);
  });

  test("deleteJob removes the job", async () => {
    const client = makeClient();
    const job = await client.enqueue("f");
    await client.deleteJob(job.id);
    assert.ok((await rejection(client.getJob(job.id))) instanceof JobNotFound);
    assert.ok((await rejection(client.deleteJob(job.id))) instanceof JobNotFound);
  });
});

describe("flow control", () => {
  test("a paused queue leases nothing and still takes jobs; resume lets them run", async () => {
    const client = makeClient();
    assert.deepEqual(await client.pauseQueue(), { queue: client.queue, paused: true });
    const job = await client.enqueue("f");
    assert.equal(job.status, "queued");
    assert.equal((await client.queueInfo()).paused, true);
    assert.equal((await client.getQueueSettings()).paused, true);
    assert.deepEqual((await client.lease({ workerId: "w", wait: 0.3 })).jobs, []);
    assert.deepEqual(await client.resumeQueue(), { queue: client.queue, paused: false });
    assert.equal((await client.queueInfo()).paused, false);
    const { jobs } = await client.lease({ workerId: "w", wait: 5 });
    assert.deepEqual(
      jobs.map((j) => j.id),
      [job.id],
    );
  });

  test("settings round trip through put, get and queueInfo; {} removes them", async () => {
    const client = makeClient();
    assert.deepEqual(await client.getQueueSettings(), {
      queue: client.queue,
      paused: false,
      settings: {},
    });
    const settings: QueueSettings = {
      maxActive: 5,
      maxActivePerKey: 1,
      rate: { limit: 100, periodS: 1 },
      ratePerKey: { limit: 10, periodS: 0.5 },
      functions: { f: { maxActive: 2, rate: { limit: 50, periodS: 1 } }, g: { maxActive: 3 } },
    };
    const stored = await client.putQueueSettings(settings);
    assert.deepEqual(stored, { queue: client.queue, paused: false, settings });
    assert.deepEqual((await client.getQueueSettings()).settings, settings);
    assert.deepEqual((await client.queueInfo()).settings, settings);
    const rateOnly = await client.putQueueSettings({ rate: { limit: 7 } });
    assert.deepEqual(rateOnly.settings, { rate: { limit: 7, periodS: 1 } });
    assert.deepEqual((await client.putQueueSettings({})).settings, {});
  });

  test("a limit out of range is an InvalidRequest naming the field", async () => {
    const client = makeClient();
    const error = await rejection(client.putQueueSettings({ maxActive: 0 }));
    assert.ok(error instanceof InvalidRequest);
    assert.equal(error.status, 400);
    assert.match(error.message, /max_active/);
    const nested = await rejection(
      client.putQueueSettings({ functions: { f: { rate: { limit: 5, periodS: -1 } } } }),
    );
    assert.ok(nested instanceof InvalidRequest);
    assert.match(nested.message, /period_s/);
    assert.deepEqual((await client.getQueueSettings()).settings, {});
  });

  test("concurrencyKey travels, and a per-key limit of 1 leases one job per key", async () => {
    const client = makeClient();
    await client.putQueueSettings({ maxActivePerKey: 1 });
    const jobs = await client.enqueueBatch([
      { function: "f", concurrencyKey: "tenant-a" },
      { function: "f", concurrencyKey: "tenant-a" },
      { function: "f", concurrencyKey: "tenant-b" },
    ]);
    assert.deepEqual(
      jobs.map((j) => j.concurrencyKey),
      ["tenant-a", "tenant-a", "tenant-b"],
    );
    const one = await client.enqueue("g", {}, { concurrencyKey: "tenant-c" });
    assert.equal((await client.getJob(one.id)).concurrencyKey, "tenant-c");
    assert.equal((await client.enqueue("g")).concurrencyKey, null);
    const { jobs: leased } = await client.lease({ workerId: "w", max: 10 });
    const keys = leased.map((j) => j.concurrencyKey ?? "none").sort();
    assert.deepEqual(keys, ["none", "tenant-a", "tenant-b", "tenant-c"]);
  });

  test("retryJobs, abortJobs and deleteJobs take a filter and count; listJobs takes keyPrefix", async () => {
    const client = makeClient();
    await client.enqueueBatch([{ function: "f", key: "k-1" }, { function: "f", key: "k-2" }]);
    for (const leased of (await client.lease({ workerId: "w", max: 2 })).jobs) {
      await client.fail({ jobId: leased.id, lease: leased.lease }, { message: "no" });
    }
    await client.enqueueBatch([{ function: "f", key: "other-1" }, { function: "g" }]);
    const byKey = await client.listJobs({ keyPrefix: "k-" });
    assert.deepEqual(byKey.jobs.map((j) => [j.key, j.status]).sort(), [
      ["k-1", "failed"],
      ["k-2", "failed"],
    ]);
    assert.equal(await client.retryJobs({ status: "failed", enqueuedAfter: new Date(0) }), 2);
    assert.equal(await client.retryJobs({ status: "failed" }), 0);
    assert.equal(await client.abortJobs({ keyPrefix: "k-" }), 2);
    assert.equal(await client.abortJobs({ function: "f", enqueuedBefore: 1 }), 0);
    assert.equal(await client.deleteJobs({ status: "aborted" }), 2);
    assert.equal((await client.queueInfo()).counts.queued, 2);
    assert.equal(await client.deleteJobs(), 2);
    assert.deepEqual((await client.listJobs()).jobs, []);
    const bad = await rejection(client.retryJobs({ keyPrefix: "" }));
    assert.ok(bad instanceof InvalidRequest);
    assert.match(bad.message, /key_prefix/);
  });
});

describe("worker routes", () => {
  test("lease, heartbeat, complete; a wrong lease is StaleLease", async () => {
    const client = makeClient();
    const job = await client.enqueue("f", { x: 1 });
    const reply = await client.lease({ workerId: "w1", max: 5, functions: ["f"] });
    assert.equal(reply.jobs.length, 1);
    const [leased] = reply.jobs;
    assert.ok(leased);
    assert.equal(leased.id, job.id);
    assert.equal(leased.status, "active");
    assert.equal(leased.attempts, 1);
    assert.ok(leased.lease);
    const ref = { jobId: leased.id, lease: leased.lease };
    assert.deepEqual(await client.heartbeat(ref, { progress: 0.25, meta: { step: "a" } }), {
      status: "active",
      aborted: false,
    });
    const stale = await rejection(client.complete({ ...ref, lease: "not-the-lease" }, 1));
    assert.ok(stale instanceof StaleLease);
    assert.equal(stale.code, "stale_lease");
    assert.equal(stale.status, 409);
    const done = await client.complete(ref, { sum: 3 }, { runS: 0.01 });
    assert.equal(done.status, "complete");
    assert.deepEqual(done.result, { sum: 3 });
    assert.deepEqual(done.meta, { step: "a" });
    assert.ok((await rejection(client.heartbeat(ref))) instanceof StaleLease);
  });

  test("fail lets the service retry while retries are left", async () => {
    const client = makeClient();
    const job = await client.enqueue("f", {}, { retries: 1 });
    for (const expected of ["queued", "failed"] as const) {
      const [leased] = (await client.lease({ workerId: "w", wait: 5 })).jobs;
      assert.ok(leased);
      const after = await client.fail(
        { jobId: leased.id, lease: leased.lease },
        { type: "ValueError", message: "bad input" },
      );
      assert.equal(after.status, expected);
    }
    const final = await client.getJob(job.id);
    assert.equal(final.attempts, 2);
    assert.deepEqual(
      { type: final.error?.type, message: final.error?.message },
      { type: "ValueError", message: "bad input" },
    );
  });

  test("renew reports aborting and lost leases; settle reports stale ones", async () => {
    const client = makeClient();
    const [a, b] = await client.enqueueBatch([{ function: "f" }, { function: "f" }]);
    assert.ok(a && b);
    const { jobs } = await client.lease({ workerId: "w", max: 2 });
    const refs = jobs.map((j) => ({ jobId: j.id, lease: j.lease }));
    await client.abort(a.id);
    const states = await client.renew([...refs, { jobId: b.id, lease: "stale" }], { leaseS: 10 });
    const byId = new Map(refs.map((ref, i) => [ref.jobId, states[i]]));
    assert.equal(byId.get(a.id), "aborting");
    assert.equal(byId.get(b.id), "active");
    assert.equal(states[2], "lost");
    const settled = await client.settle(
      refs.map((ref) => ({ ...ref, status: ref.jobId === a.id ? "aborted" : "complete", result: 7 })),
    );
    assert.deepEqual(settled, [true, true]);
    assert.deepEqual(await client.settle([{ ...refs[0]!, status: "complete" }]), [false]);
    assert.equal((await client.getJob(a.id)).status, "aborted");
    assert.equal((await client.getJob(b.id)).result, 7);
    assert.equal(await client.sweep(), 0);
  });

  test("a lease request long-polls until a job arrives", async () => {
    const client = makeClient();
    const started = Date.now();
    const leasing = client.lease({ workerId: "w", wait: 10 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const job = await client.enqueue("f");
    const { jobs } = await leasing;
    assert.deepEqual(
      jobs.map((j) => j.id),
      [job.id],
    );
    assert.ok(Date.now() - started < 5000);
  });
});

describe("auth", { skip: !roleTokens.client || !roleTokens.worker }, () => {
  test("no token is Unauthenticated", async () => {
    const client = new Client({ url: serviceUrl(), token: "", queue: uniqueQueue() });
    const error = await rejection(client.queueInfo());
    assert.ok(error instanceof Unauthenticated);
    assert.equal(error.status, 401);
    assert.equal(error.code, "unauthenticated");
    assert.ok((await rejection(makeClient({ token: "wrong" }).enqueue("f"))) instanceof Unauthenticated);
  });

  test("each role gets only its routes (Forbidden otherwise)", async () => {
    const queue = uniqueQueue();
    const asClient = new Client({ url: serviceUrl(), token: roleTokens.client!, queue });
    const asWorker = new Client({ url: serviceUrl(), token: roleTokens.worker!, queue });
    const job = await asClient.enqueue("f");
    const forbidden = await rejection(asClient.lease({ workerId: "w" }));
    assert.ok(forbidden instanceof Forbidden);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.code, "forbidden");
    assert.ok((await rejection(asWorker.abort(job.id))) instanceof Forbidden);
    // Workers may enqueue (cron ticks, follow-up jobs): here on another queue.
    assert.equal((await asWorker.enqueue("next", {}, { queue: `${queue}-next` })).status, "queued");
    assert.ok((await rejection(asClient.deleteJob(job.id))) instanceof Forbidden);
    assert.equal((await asWorker.getJob(job.id)).id, job.id);
    assert.equal((await asWorker.lease({ workerId: "w" })).jobs[0]?.id, job.id);
  });

  test("pause, settings and bulk delete are the admin's; a client reads, retries and aborts", async () => {
    const queue = uniqueQueue();
    const asClient = new Client({ url: serviceUrl(), token: roleTokens.client!, queue });
    const asWorker = new Client({ url: serviceUrl(), token: roleTokens.worker!, queue });
    await asClient.enqueue("f");
    for (const call of [
      () => asClient.pauseQueue(),
      () => asClient.resumeQueue(),
      () => asClient.putQueueSettings({ maxActive: 1 }),
      () => asClient.deleteJobs(),
      () => asWorker.pauseQueue(),
      () => asWorker.abortJobs(),
    ]) {
      const error = await rejection(call());
      assert.ok(error instanceof Forbidden, `${error.name}: ${error.message}`);
    }
    assert.deepEqual((await asClient.getQueueSettings()).settings, {});
    assert.deepEqual((await asWorker.getQueueSettings()).paused, false);
    assert.equal(await asClient.retryJobs({ status: "failed" }), 0);
    assert.equal(await asClient.abortJobs(), 1);
  });

  test("the token may ride in the URL's password", async () => {
    const url = new URL(serviceUrl());
    url.password = roleTokens.client!;
    const client = new Client({ url: url.toString(), queue: uniqueQueue() });
    assert.equal((await client.enqueue("f")).status, "queued");
    assert.ok(!client.url.includes(roleTokens.client!), "the token stays out of the base URL");
  });
});

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Error, `rejected with a non-Error: ${String(error)}`);
    return error;
  }
  assert.fail("expected the call to fail");
}
