/** Retries, error mapping and SSE parsing, against small local fake servers. */

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, test } from "node:test";

import {
  Client,
  ConnectionFailed,
  JobwireError,
  PayloadTooLarge,
  ServiceUnavailable,
  errorFromResponse,
  parseSse,
} from "../dist/index.js";

type Route = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const servers: Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

async function fakeService(route: Route): Promise<string> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => route(req, res, body));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

const JOB = {
  id: "j1",
  function: "f",
  kwargs: {},
  queue: "q",
  key: null,
  status: "queued",
  priority: 0,
  timeout: null,
  heartbeat: 0,
  retries: 0,
  attempts: 0,
  ttl: 600,
  scheduled: 0,
  retry_delay: 0,
  retry_backoff: false,
  progress: 0,
  meta: {},
  result: null,
  error: null,
  created: 1,
  queued: 1,
  started: 0,
  completed: 0,
  touched: 1,
  worker: null,
};

const fast = { retries: 3, retryBaseDelayS: 0.005, retryMaxDelayS: 0.02 };

describe("retries", () => {
  test("an idempotent call is retried on 503 until it succeeds", async () => {
    let calls = 0;
    const url = await fakeService((_req, res) => {
      calls++;
      if (calls <= 2) reply(res, 503, { error: { code: "not_ready", message: "backend down" } });
      else reply(res, 200, JOB);
    });
    const job = await new Client({ url, ...fast }).getJob("j1");
    assert.equal(job.id, "j1");
    assert.equal(job.retryDelay, 0);
    assert.equal(calls, 3);
  });

  test("enqueue resends the same generated id, so a retry dedupes", async () => {
    const ids: string[] = [];
    const url = await fakeService((_req, res, body) => {
      ids.push((JSON.parse(body) as { id: string }).id);
      if (ids.length === 1) reply(res, 503, { error: { code: "unavailable", message: "busy" } });
      else reply(res, 201, { ...JOB, duplicate: false });
    });
    await new Client({ url, ...fast }).enqueue("f");
    assert.equal(ids.length, 2);
    assert.equal(ids[0], ids[1]);
  });

  test("the retries run out into ServiceUnavailable with the service's message", async () => {
    let calls = 0;
    const url = await fakeService((_req, res) => {
      calls++;
      reply(res, 503, { error: { code: "not_ready", message: "backend unreachable" } });
    });
    const error = await new Client({ url, ...fast }).queueInfo({ queue: "q" }).catch((e: unknown) => e);
    assert.ok(error instanceof ServiceUnavailable);
    assert.equal(error.status, 503);
    assert.equal(error.code, "not_ready");
    assert.match(error.message, /backend unreachable/);
    assert.equal(calls, 4);
  });

  test("a non-idempotent call is not retried on 503", async () => {
    let calls = 0;
    const url = await fakeService((_req, res) => {
      calls++;
      reply(res, 503, { error: { code: "unavailable", message: "busy" } });
    });
    const error = await new Client({ url, ...fast }).retry("j1").catch((e: unknown) => e);
    assert.ok(error instanceof ServiceUnavailable);
    assert.equal(calls, 1);
  });

  test("a refused connection is retried with backoff, then ConnectionFailed", async () => {
    const url = await fakeService(() => undefined);
    const server = servers.pop();
    await new Promise((resolve) => server?.close(resolve)); // nothing listens there now
    const started = Date.now();
    const client = new Client({ url, retries: 3, retryBaseDelayS: 0.04, retryMaxDelayS: 1 });
    const error = await client.lease({ workerId: "w" }).catch((e: unknown) => e);
    assert.ok(error instanceof ConnectionFailed, String(error));
    assert.equal(error.code, "connection");
    assert.match(error.message, /ECONNREFUSED/);
    // backoffs of at least 20 + 40 + 80 ms (each jittered into [d/2, d])
    assert.ok(Date.now() - started >= 140, `gave up after ${Date.now() - started} ms`);
  });

  test("a refused connection recovers when the service comes up", async () => {
    const probe = await fakeService(() => undefined);
    const port = new URL(probe).port;
    const first = servers.pop();
    await new Promise((resolve) => first?.close(resolve));
    const client = new Client({ url: probe, retries: 6, retryBaseDelayS: 0.05, retryMaxDelayS: 0.2 });
    const pending = client.getJob("j1");
    await new Promise((resolve) => setTimeout(resolve, 120));
    const server = createServer((_req, res) => reply(res, 200, JOB));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(Number(port), "127.0.0.1", resolve));
    assert.equal((await pending).id, "j1");
  });
});

describe("errors", () => {
  test("the body's code picks the class; the status is the fallback", () => {
    const body = { error: { code: "payload_too_large", message: "big" } };
    const tooLarge = errorFromResponse(413, JSON.stringify(body));
    assert.ok(tooLarge instanceof PayloadTooLarge);
    assert.equal(tooLarge.message, "big (HTTP 413)");
    const proxy = errorFromResponse(502, "<html>bad gateway</html>");
    assert.ok(proxy instanceof ServiceUnavailable);
    assert.equal(proxy.status, 502);
    const odd = errorFromResponse(418, JSON.stringify({ error: { code: "teapot", message: "no" } }));
    assert.equal(odd.constructor, JobwireError);
    assert.equal(odd.code, "teapot");
    assert.equal(odd.name, "JobwireError");
  });

  test("the token goes out as a bearer header, from the URL's password too", async () => {
    const seen: (string | undefined)[] = [];
    const url = await fakeService((req, res) => {
      seen.push(req.headers.authorization);
      reply(res, 200, JOB);
    });
    await new Client({ url, token: "tok-a" }).getJob("j1");
    const withPassword = new URL(url);
    withPassword.password = "tok-b";
    await new Client({ url: withPassword.toString() }).getJob("j1");
    await new Client({ url, token: "" }).getJob("j1");
    assert.deepEqual(seen, ["Bearer tok-a", "Bearer tok-b", undefined]);
  });
});

describe("parseSse", () => {
  test("events split across chunks, CRLF endings, comments and multi-line data", async () => {
    const text =
      ': ping\r\nevent: job\r\ndata: {"a":\r\n\r\n' + // CRLF, a comment
      "event: job\ndata: 1\ndata: 2\n\n" + // LF, two data lines
      "id: 7\ndata: x\r\r"; // CR, an id, no event name
    const encoded = new TextEncoder().encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < encoded.length; i += 3) controller.enqueue(encoded.slice(i, i + 3));
        controller.close();
      },
    });
    const events = [];
    for await (const event of parseSse(stream)) events.push(event);
    assert.deepEqual(events, [
      { event: "job", data: '{"a":' },
      { event: "job", data: "1\n2" },
      { event: "message", data: "x", id: "7" },
    ]);
  });
});
