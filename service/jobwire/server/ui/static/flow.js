// An operator's controls over a queue: pause and resume, bulk actions on the jobs a filter
// matches, and the queue's limits. Each action is one REST call, checked by the service
// like any other; the buttons shown are the ones the viewer's role may use.

import { api, can } from "./api.js";
import { confirmAction, h, plural, replace, showBanner } from "./dom.js";

const CONFIGURE = "configure"; // pause, resume and limits: admin only
const LIVE = ["queued", "scheduled", "active"];
const FINISHED = ["complete", "failed", "aborted"];

// action -> what it takes, who may, and how the confirmation and the answer read
const BULK = {
  retry: {
    label: "Retry all matching", permission: "control", done: "Retried", statuses: FINISHED,
    text: "Queue again the finished jobs (complete, failed or aborted)", whatever: "",
    after: "Live jobs are left alone.",
  },
  abort: {
    label: "Abort all matching", permission: "control", done: "Aborted", statuses: LIVE,
    text: "Abort the live jobs (queued, scheduled or active)", whatever: "",
    after: "Running ones are cancelled when their worker next hears.",
  },
  delete: {
    label: "Delete all matching", permission: "delete", done: "Deleted", statuses: null,
    text: "Delete the jobs", whatever: ", whatever their status",
    after: "This cannot be undone.",
  },
};

const queuePath = (queue) => `/v1/queues/${encodeURIComponent(queue)}`;

/** The paused state of a queue and, for a role that may, a Pause/Resume button.
 *
 * Returns {element, show(paused)}: the page calls show() with each fresh queue info, and
 * the element stays the same (keyboard focus survives refreshes). After an action the
 * control shows the answered state and calls refresh().
 */
export function pauseControl(queue, refresh) {
  let paused = false;
  const state = h("span", { class: "state", "data-field": "paused" });
  const button = can(CONFIGURE)
    ? h("button", { type: "button", class: "pause", "data-action": "pause", onclick: toggle })
    : null;
  const element = h("span", { class: "pause-control" }, state, button ? " " : null, button);

  function show(now) {
    paused = Boolean(now);
    state.textContent = paused ? "paused" : "running";
    state.className = `state ${paused ? "paused" : "running"}`;
    state.title = paused
      ? "No job of this queue starts until it is resumed; running jobs finish, enqueue works."
      : "Workers take its jobs.";
    if (button) {
      button.textContent = paused ? "Resume" : "Pause";
      button.dataset.action = paused ? "resume" : "pause";
      button.setAttribute("aria-label", `${paused ? "Resume" : "Pause"} queue ${queue}`);
    }
  }

  async function toggle() {
    const verb = paused ? "Resume" : "Pause";
    const text = paused
      ? `Resume queue ${queue}? Workers take its queued jobs again at once.`
      : `Pause queue ${queue}? No job of it starts until it is resumed; running jobs finish `
        + "and enqueue still works.";
    if (!(await confirmAction(`${verb} queue?`, text, verb))) return;
    button.disabled = true;
    try {
      const answer = await api("POST", `${queuePath(queue)}/${verb.toLowerCase()}`);
      show(answer && typeof answer.paused === "boolean" ? answer.paused : !paused);
      refresh();
    } catch (error) {
      showBanner(error);
    } finally {
      button.disabled = false;
    }
  }

  show(false);
  return { element, show };
}

/** The filter of the job list as the bulk endpoints take it (unset fields left out). */
export function filterOf(params) {
  const filter = {};
  for (const key of ["status", "function", "key_prefix"]) if (params.get(key)) filter[key] = params.get(key);
  return filter;
}

function describe(queue, filter) {
  const parts = [];
  if (filter.status) parts.push(`status ${filter.status}`);
  if (filter.function) parts.push(`function ${filter.function}`);
  if (filter.key_prefix) parts.push(`a key starting with "${filter.key_prefix}"`);
  if (!parts.length) return `of queue ${queue} (no filter: all of them)`;
  return `of queue ${queue} with ${parts.join(", ")}`;
}

// How many jobs an action would change, when the counts per status tell (a filter by
// function or key needs a scan the page does not make).
function expected(action, filter, counts) {
  if (!counts || filter.function || filter.key_prefix) return null;
  const statuses = BULK[action].statuses || Object.keys(counts);
  return statuses
    .filter((s) => !filter.status || s === filter.status)
    .reduce((sum, s) => sum + (counts[s] || 0), 0);
}

/** Retry, abort and delete every job the page's filter matches, each after confirmation.
 *
 * Args (an object): queue; filter() the current filter; counts() the latest counts per
 * status (or null); done() to refresh the page after an action. Returns null when the
 * role may use none of them.
 */
export function bulkActions({ queue, filter, counts, done }) {
  const result = h("span", { id: "bulk-result", role: "status", class: "muted" });
  const buttons = Object.entries(BULK).filter(([, spec]) => can(spec.permission)).map(([action, spec]) =>
    h("button", {
      type: "button",
      id: `bulk-${action}`,
      class: action === "delete" ? "danger" : null,
      onclick: () => run(action),
    }, spec.label));
  if (!buttons.length) return null;

  async function run(action) {
    const spec = BULK[action];
    const where = filter();
    const n = expected(action, where, counts());
    const now = n === null ? "" : ` ${plural(n, "job")} match now.`;
    const label = spec.label.split(" ")[0];
    const text = `${spec.text} ${describe(queue, where)}${spec.whatever}?${now} ${spec.after}`;
    if (!(await confirmAction(`${label} all matching?`, text, label))) return;
    for (const button of buttons) button.disabled = true;
    try {
      const answer = await api("POST", `${queuePath(queue)}/jobs/${action}`, where);
      result.textContent = `${spec.done} ${plural(answer.count, "job")}.`;
      result.dataset.count = String(answer.count);
      done();
    } catch (error) {
      showBanner(error);
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  }

  return h("div", { class: "actions bulk", id: "bulk" }, buttons, result);
}

function rateText(rate) {
  const period = rate.period_s === 1 ? "second" : `${rate.period_s} s`;
  return `at most ${rate.limit} started per ${period}`;
}

function limitText(maxActive, rate) {
  return [maxActive ? `at most ${maxActive} active` : null, rate ? rateText(rate) : null]
    .filter(Boolean).join("; ");
}

/** Fill ``box`` (a group of a ``dl``) with the queue's limits (queue info's `settings`),
 * one term per scope, or one saying there are none. */
export function renderLimits(box, settings) {
  const rows = [];
  const s = settings || {};
  if (s.max_active || s.rate) rows.push(["Queue", limitText(s.max_active, s.rate)]);
  if (s.max_active_per_key || s.rate_per_key) {
    rows.push(["Each concurrency key", limitText(s.max_active_per_key, s.rate_per_key)]);
  }
  for (const name of Object.keys(s.functions || {}).sort()) {
    const f = s.functions[name];
    rows.push([`Function ${name}`, limitText(f.max_active, f.rate)]);
  }
  if (!rows.length) rows.push(["Limits", "none: jobs start as soon as a worker takes them"]);
  replace(box, rows.map(([scope, text]) => [h("dt", {}, scope), h("dd", { "data-limit": scope }, text)]));
}
