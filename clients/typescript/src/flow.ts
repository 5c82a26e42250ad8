/** Flow control on the wire: queue settings and bulk filters, camelCase <-> snake_case. */

import type { FunctionLimits, JobFilter, QueueSettings, Rate } from "./types.js";

interface RawRate {
  limit: number;
  period_s?: number;
}

interface RawFunctionLimits {
  max_active?: number | null;
  rate?: RawRate | null;
}

/** A queue's settings as the service sends and takes them (unset limits absent or null). */
export interface RawQueueSettings {
  max_active?: number | null;
  max_active_per_key?: number | null;
  rate?: RawRate | null;
  rate_per_key?: RawRate | null;
  functions?: Record<string, RawFunctionLimits>;
}

/** Settings from the service's JSON; unset limits are left out. */
export function toSettings(raw: RawQueueSettings | null | undefined): QueueSettings {
  const settings: QueueSettings = {};
  if (!raw) return settings;
  if (raw.max_active != null) settings.maxActive = raw.max_active;
  if (raw.max_active_per_key != null) settings.maxActivePerKey = raw.max_active_per_key;
  if (raw.rate != null) settings.rate = toRate(raw.rate);
  if (raw.rate_per_key != null) settings.ratePerKey = toRate(raw.rate_per_key);
  const functions = Object.entries(raw.functions ?? {});
  if (functions.length > 0) {
    settings.functions = Object.fromEntries(
      functions.map(([name, limits]) => {
        const own: FunctionLimits = {};
        if (limits.max_active != null) own.maxActive = limits.max_active;
        if (limits.rate != null) own.rate = toRate(limits.rate);
        return [name, own];
      }),
    );
  }
  return settings;
}

/** The REST body of `settings` (the service checks the values and names a bad field). */
export function settingsBody(settings: QueueSettings): RawQueueSettings {
  const body: RawQueueSettings = {};
  if (settings.maxActive !== undefined) body.max_active = settings.maxActive;
  if (settings.maxActivePerKey !== undefined) body.max_active_per_key = settings.maxActivePerKey;
  if (settings.rate !== undefined) body.rate = rateBody(settings.rate);
  if (settings.ratePerKey !== undefined) body.rate_per_key = rateBody(settings.ratePerKey);
  if (settings.functions !== undefined) {
    body.functions = Object.fromEntries(
      Object.entries(settings.functions).map(([name, limits]) => {
        const own: RawFunctionLimits = {};
        if (limits.maxActive !== undefined) own.max_active = limits.maxActive;
        if (limits.rate !== undefined) own.rate = rateBody(limits.rate);
        return [name, own];
      }),
    );
  }
  return body;
}

/** The REST body of a bulk call's filter (Dates become Unix seconds). */
export function filterBody(filter: JobFilter): Record<string, unknown> {
  const wire: Record<keyof JobFilter, string> = {
    status: "status",
    function: "function",
    keyPrefix: "key_prefix",
    enqueuedBefore: "enqueued_before",
    enqueuedAfter: "enqueued_after",
  };
  const body: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(wire) as [keyof JobFilter, string][]) {
    const value = filter[name];
    if (value === undefined || value === null) continue;
    body[field] = value instanceof Date ? value.getTime() / 1000 : value;
  }
  return body;
}

function toRate(raw: RawRate): Rate {
  return raw.period_s === undefined ? { limit: raw.limit } : { limit: raw.limit, periodS: raw.period_s };
}

function rateBody(rate: Rate): RawRate {
  return rate.periodS === undefined ? { limit: rate.limit } : { limit: rate.limit, period_s: rate.periodS };
}
