/** Shared by the tests: the service under test, unique queue names, polling. */

import { randomUUID } from "node:crypto";

import { Client, type ClientOptions } from "../dist/index.js";

/** The service the tests run against (the pytest side starts one and sets this). */
export function serviceUrl(): string {
  const url = process.env.JOBWIRE_URL;
  if (!url) throw new Error("set JOBWIRE_URL to a running `jobwire serve` (see clients/README.md)");
  return url;
}

/** Tokens of the other roles, when the service has tokens (JOBWIRE_TOKEN is the admin's). */
export const roleTokens = {
  client: process.env.JOBWIRE_TEST_CLIENT_TOKEN,
  worker: process.env.JOBWIRE_TEST_WORKER_TOKEN,
};

/** A queue name no other test uses. */
export function uniqueQueue(prefix = "ts"): string {
  return `${prefix}-${randomUUID().slice(0, 12)}`;
}

/** A client on the service (admin token from $JOBWIRE_TOKEN), on its own queue. */
export function makeClient(options: ClientOptions = {}): Client {
  return new Client({ url: serviceUrl(), queue: uniqueQueue(), ...options });
}

/** Poll `check` until it returns a value other than undefined, or fail after `ms`. */
export async function until<T>(
  check: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
