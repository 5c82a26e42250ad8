// Jobwire dashboard: the pages (overview, a queue, a job), in small modules of our own, no
// dependencies, no build step. Everything it shows comes from the REST API with the
// viewer's bearer token (kept in sessionStorage, never rendered); it builds the DOM with
// textContent only.

import { SIGNED_OUT, TOKEN_KEY, api, can, live, session, streamEvents } from "./api.js";
import {
  ago, clearBanner, confirmAction, duration, h, json, localTime, main, replace, showBanner,
  statusChip, svg,
} from "./dom.js";
import { bulkActions, filterOf, pauseControl, renderLimits } from "./flow.js";

const STATUSES = ["queued", "scheduled", "active", "aborting", "complete", "failed", "aborted"];
const FINISHED = new Set(["complete", "failed", "aborted"]);
const OVERVIEW_EVERY_MS = 2000; // never faster than once a second
const QUEUE_EVERY_MS = 3000;
const INFO_EVERY = 5; // overview ticks between reads of each queue's workers
const CHART_SAMPLES = 150; // five minutes at OVERVIEW_EVERY_MS
const STUCK_AFTER_S = 60;
const PAGE_SIZE = 50;
const NARROW_HIDDEN = new Set(["scheduled", "aborting", "aborted"]); // on a phone's width

const jobUrl = (job) => `/ui/jobs/${encodeURIComponent(job.id)}?queue=${encodeURIComponent(job.queue)}`;
const queueUrl = (name) => `/ui/queues/${encodeURIComponent(name)}`;

// ---- session ----

function showLogin(message) {
  document.title = "Sign in · Jobwire";
  replace(document.getElementById("session"));
  replace(document.getElementById("crumbs"));
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "token-help",
  });
  const form = h(
    "form",
    {
      class: "login card",
      onsubmit: (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        start();
      },
    },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "API token"),
    input,
    h("small", { id: "token-help", class: "muted" },
      "Kept in this browser tab's session only and sent as the bearer header."),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  replace(main, form);
  input.focus();
}

function renderSession() {
  const box = document.getElementById("session");
  const parts = [h("span", { id: "role" }, `role: ${session.me.role}`)];
  if (session.me.auth) {
    parts.push(h("button", {
      type: "button",
      id: "signout",
      onclick: () => {
        sessionStorage.removeItem(TOKEN_KEY);
        location.reload();
      },
    }, "Sign out"));
  }
  replace(box, parts);
}

function crumbs(...items) {
  replace(document.getElementById("crumbs"),
    items.map(([label, href]) => (href ? h("a", { href }, label) : h("span", {}, label))));
}

// ---- overview ----

function overview() {
  document.title = "Queues · Jobwire";
  crumbs();
  const history = new Map(); // queue -> [{t, complete, failed}]
  const body = h("tbody");
  const table = h("table", { id: "queues" },
    h("thead", {}, h("tr", {},
      h("th", {}, "Queue"),
      h("th", {}, "State"),
      STATUSES.map((s) => h("th", { class: `num${NARROW_HIDDEN.has(s) ? " hide-narrow" : ""}` }, s)),
      h("th", { class: "num" }, "Oldest queued"),
      h("th", { class: "num" }, "Workers"),
      h("th", { class: "num hide-narrow", title: "finished per second over the last 5 minutes" },
        "Done/s"),
      h("th", { class: "hide-narrow wrap" }, h("span", { class: "legend" },
        h("span", { class: "c" }, "completed"), " / ", h("span", { class: "f" }, "failed"), " per s")),
    )),
    body);
  const updated = h("p", { class: "muted", id: "updated" });
  replace(main, h("h1", {}, "Queues"), h("div", { class: "card" }, table), updated);

  // Counting a big queue costs the store: counts (GET /v1/queues) are read every tick,
  // each queue's info (workers, throughput, pause state; it counts again) every
  // INFO_EVERY ticks, and at once after this viewer pauses or resumes it.
  const infos = new Map();
  const controls = new Map(); // queue -> its pause control, kept across refreshes
  let ticks = 0;
  const control = (name) => {
    if (!controls.has(name)) {
      controls.set(name, pauseControl(name, () => {
        infos.delete(name);
        refresh();
      }));
    }
    return controls.get(name);
  };
  const refresh = live(OVERVIEW_EVERY_MS, async () => {
    const fresh = ticks++ % INFO_EVERY === 0;
    const { queues } = await api("GET", "/v1/queues");
    const details = await Promise.all(queues.map(async (queue) => {
      const path = `/v1/queues/${encodeURIComponent(queue.name)}`;
      if (fresh || !infos.has(queue.name)) infos.set(queue.name, await api("GET", path));
      const info = { ...infos.get(queue.name), counts: queue.counts };
      const oldest = (queue.counts.queued || 0) > 0
        ? (await api("GET", `${path}/jobs?status=queued&limit=1`)).jobs[0] : null;
      return { info, oldest: oldest || null };
    }));
    const now = Date.now() / 1000;
    const rows = details.map(({ info, oldest }) => {
      const samples = history.get(info.name) || [];
      samples.push({ t: now, complete: info.counts.complete || 0, failed: info.counts.failed || 0 });
      if (samples.length > CHART_SAMPLES + 1) samples.shift();
      history.set(info.name, samples);
      const age = oldest ? now - (oldest.queued || oldest.created) : null;
      const workers = info.workers.length;
      const waiting = (info.counts.queued || 0) > 0 && !info.paused; // paused: held, not stuck
      const pause = control(info.name);
      pause.show(info.paused);
      return h("tr", { "data-queue": info.name, "data-paused": info.paused ? "true" : "false" },
        h("td", {}, h("a", { href: queueUrl(info.name) }, info.name)),
        h("td", { "data-field": "state" }, pause.element),
        STATUSES.map((s) => h("td", {
          class: `num${NARROW_HIDDEN.has(s) ? " hide-narrow" : ""}`, "data-count": s },
          h("a", { href: `${queueUrl(info.name)}?status=${s}`,
            "aria-label": `${info.name}: ${info.counts[s] || 0} ${s}` }, info.counts[s] || 0))),
        h("td", { class: `num${waiting && age > STUCK_AFTER_S ? " stuck" : ""}`,
          "data-field": "oldest" }, age === null ? "—" : duration(age)),
        h("td", { class: `num${waiting && workers === 0 ? " stuck" : ""}`, "data-field": "workers" },
          workers),
        h("td", { class: "num hide-narrow" }, (info.finished_per_s || 0).toFixed(2)),
        h("td", { class: "hide-narrow" }, chart(samples)),
      );
    });
    const focused = document.activeElement; // a pause button keeps focus across refreshes
    replace(body, rows.length ? rows
      : h("tr", {}, h("td", { colspan: STATUSES.length + 6, class: "muted" }, "No queues yet.")));
    if (focused && focused !== document.activeElement && body.contains(focused)) focused.focus();
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${OVERVIEW_EVERY_MS / 1000} s.`;
    clearBanner();
  });
}

// Completed and failed jobs per second between samples, as two lines.
function chart(samples) {
  const width = 130;
  const height = 36;
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = samples[i].t - samples[i - 1].t || 1;
    rates.push({
      complete: Math.max(0, samples[i].complete - samples[i - 1].complete) / dt,
      failed: Math.max(0, samples[i].failed - samples[i - 1].failed) / dt,
    });
  }
  const top = Math.max(1, ...rates.map((r) => Math.max(r.complete, r.failed)));
  const last = rates[rates.length - 1] || { complete: 0, failed: 0 };
  const box = svg("svg", {
    class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
  });
  const label = `completed ${last.complete.toFixed(1)}/s, failed ${last.failed.toFixed(1)}/s`;
  box.setAttribute("aria-label", label);
  const title = svg("title", {});
  title.textContent = `${label} (now); scale up to ${top.toFixed(1)}/s`;
  box.append(title, svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, stroke: "#d9dee7" }));
  for (const [key, color] of [["complete", "#1a7f37"], ["failed", "#c62828"]]) {
    const step = width / CHART_SAMPLES;
    const offset = width - rates.length * step;
    const points = rates.map((r, i) =>
      `${(offset + (i + 1) * step).toFixed(1)},${(height - 2 - (r[key] / top) * (height - 4)).toFixed(1)}`);
    if (points.length) {
      box.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }));
    }
  }
  return box;
}

// ---- a queue ----

const FILTERS = ["status", "function", "key_prefix"]; // of the job list, in its URL

// The job list's filter form; show(params) puts a URL's filter back into it.
function filterForm(onApply) {
  const status = h("select", { id: "filter-status", name: "status" },
    h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s)));
  const fn = h("input", { id: "filter-function", name: "function", placeholder: "any",
    size: 18, maxlength: 200 });
  const key = h("input", { id: "filter-key", name: "key_prefix", placeholder: "any",
    size: 18, maxlength: 512 });
  const inputs = { status, function: fn, key_prefix: key };
  const element = h("form", { class: "filters", id: "filters", onsubmit: (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const name of FILTERS) if (inputs[name].value.trim()) params.set(name, inputs[name].value.trim());
    onApply(params);
  } },
  h("label", {}, "Status", status),
  h("label", {}, "Function", fn),
  h("label", {}, "Key starts with", key),
  h("button", { type: "submit", class: "primary" }, "Filter"));
  const show = (params) => {
    for (const name of FILTERS) inputs[name].value = params.get(name) || "";
  };
  return { element, show };
}

function gotoForm(queue) {
  const id = h("input", { id: "goto-id", name: "id", placeholder: "job id", size: 18 });
  return h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    if (id.value.trim()) location.href = jobUrl({ id: id.value.trim(), queue });
  } }, h("label", {}, "Open a job by id", id), h("button", { type: "submit" }, "Open"));
}

const jobsTable = (body) => h("table", { id: "jobs" }, h("thead", {}, h("tr", {},
  h("th", {}, "Job"), h("th", {}, "Function"), h("th", {}, "Status"),
  h("th", { class: "num hide-narrow" }, "Attempts"), h("th", { class: "hide-narrow" }, "Key"),
  h("th", {}, "Created"), h("th", { class: "hide-narrow" }, "Error"))), body);

const workersTable = (body) => h("table", { id: "workers" }, h("thead", {}, h("tr", {},
  h("th", {}, "Id"), h("th", { class: "hide-narrow" }, "Host"), h("th", {}, "Functions"),
  h("th", { class: "num hide-narrow" }, "Concurrency"), h("th", { class: "num" }, "Running"),
  h("th", {}, "Transport"), h("th", {}, "Last seen"))), body);

function jobRows(jobs) {
  if (!jobs.length) return h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No jobs match."));
  return jobs.map((job) => h("tr", { "data-job": job.id },
    h("td", { class: "wrap jobid" }, h("a", { href: jobUrl(job) }, job.id)),
    h("td", {}, job.function),
    h("td", {}, statusChip(job.status)),
    h("td", { class: "num hide-narrow" }, `${job.attempts}/${job.retries + 1}`),
    h("td", { class: "wrap hide-narrow" }, job.key || ""),
    h("td", { title: ago(job.created) }, localTime(job.created)),
    h("td", { class: "wrap hide-narrow" }, job.error ? `${job.error.type}: ${job.error.message}` : ""),
  ));
}

function workerRows(workers) {
  if (!workers.length) {
    return h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No worker seen in the last minute."));
  }
  const now = Date.now() / 1000;
  return workers.map((w) => h("tr", { "data-worker": w.id },
    h("td", { class: "wrap jobid" }, w.id), h("td", { class: "hide-narrow" }, w.host || "—"),
    h("td", { class: "wrap" }, (w.functions || []).join(", ")),
    h("td", { class: "num hide-narrow" }, w.concurrency ?? "—"),
    h("td", { class: "num" }, w.running ?? "—"),
    h("td", {}, w.transport || "store"),
    h("td", { title: localTime(w.seen) }, w.seen ? `${duration(now - w.seen)} ago` : "—"),
  ));
}

// Previous / first / next: the API's cursors, kept in the URL (the back button works).
function pagerButtons(params, nextCursor, load) {
  const buttons = [];
  if (params.get("cursor")) {
    buttons.push(h("button", { type: "button", onclick: () => history.back() }, "← Previous"));
    const first = new URLSearchParams(params);
    first.delete("cursor");
    buttons.push(h("a", { href: `?${first}` }, "First page"));
  }
  if (nextCursor) {
    buttons.push(h("button", { type: "button", id: "next", onclick: () => {
      const next = new URLSearchParams(params);
      next.set("cursor", nextCursor);
      history.pushState(null, "", `?${next}`);
      load();
    } }, "Next →"));
  }
  return buttons;
}

function queuePage(name) {
  document.title = `${name} · Jobwire`;
  crumbs(["Queues", "/ui"], [name, null]);
  const path = `/v1/queues/${encodeURIComponent(name)}`;
  const params = () => new URLSearchParams(location.search);
  const counts = h("p", { id: "counts" });
  const limits = h("div", { id: "limits", class: "group" });
  const jobsBody = h("tbody");
  const pager = h("div", { class: "pager" });
  const workersBody = h("tbody");
  let info = null;
  let shownSettings = "";
  let refresh = () => {};
  const pause = pauseControl(name, () => refresh());
  const filters = filterForm((chosen) => {
    history.pushState(null, "", `${location.pathname}?${chosen}`);
    load().catch(showBanner);
  });
  const bulk = bulkActions({
    queue: name,
    filter: () => filterOf(params()),
    counts: () => info && info.counts,
    done: () => { // the list may have shrunk: back to its first page
      const first = params();
      first.delete("cursor");
      history.replaceState(null, "", `${location.pathname}?${first}`);
      refresh();
    },
  });
  replace(main,
    h("h1", {}, `Queue ${name}`),
    counts,
    h("div", { class: "card", id: "flow" }, h("dl", { class: "fields" },
      h("dt", {}, "State"), h("dd", {}, pause.element), limits)),
    h("div", { class: "card" },
      h("div", { class: "actions" }, filters.element, gotoForm(name)), bulk, jobsTable(jobsBody), pager),
    h("h2", {}, "Workers (seen in the last minute)"),
    h("div", { class: "card" }, workersTable(workersBody)));

  async function load() {
    const p = params();
    filters.show(p);
    const query = new URLSearchParams({ limit: String(Number(p.get("limit")) || PAGE_SIZE) });
    for (const key of [...FILTERS, "cursor"]) if (p.get(key)) query.set(key, p.get(key));
    const page = await api("GET", `${path}/jobs?${query}`);
    replace(jobsBody, jobRows(page.jobs));
    replace(pager, pagerButtons(p, page.next_cursor, load));
  }

  async function loadInfo() {
    info = await api("GET", path);
    replace(counts, STATUSES.map((s) => [
      h("a", { href: `?status=${s}`, "data-count": s }, `${s}: ${info.counts[s] || 0}`), " "]));
    pause.show(info.paused);
    const settings = JSON.stringify(info.settings || {});
    if (settings !== shownSettings) renderLimits(limits, info.settings);
    shownSettings = settings;
    replace(workersBody, workerRows(info.workers));
  }

  window.addEventListener("popstate", () => load().catch(showBanner));
  refresh = live(QUEUE_EVERY_MS, async () => {
    await Promise.all([load(), loadInfo()]);
    clearBanner();
  });
}

// ---- a job ----

function jobPage(jobId) {
  document.title = `Job ${jobId} · Jobwire`;
  const queueHint = new URLSearchParams(location.search).get("queue");
  const hint = queueHint ? `?queue=${encodeURIComponent(queueHint)}` : "";
  const path = `/v1/jobs/${encodeURIComponent(jobId)}`;
  let watching = null;
  let job = null;

  async function act(label, text, method, suffix, body) {
    if (!(await confirmAction(`${label} job?`, text, label))) return;
    try {
      const answer = await api(method, `${path}${suffix}${hint}`, body);
      if (method === "DELETE") {
        location.href = queueUrl(job.queue);
        return;
      }
      render(answer);
      watch();
    } catch (error) {
      showBanner(error);
    }
  }

  function render(current) {
    job = current;
    crumbs(["Queues", "/ui"], [job.queue, queueUrl(job.queue)], [job.id, null]);
    const live = !FINISHED.has(job.status);
    const actions = h("div", { class: "actions", id: "actions" });
    if (can("control") && live && job.status !== "aborting") {
      actions.append(h("button", { type: "button", id: "abort", class: "danger", onclick: () =>
        act("Abort", `Abort job ${job.id} (${job.function})? A running job is cancelled when its worker next hears.`,
          "POST", "/abort", { error: "aborted from the dashboard" }) }, "Abort"));
    }
    if (can("control") && !live) {
      actions.append(h("button", { type: "button", id: "retry", class: "primary", onclick: () =>
        act("Retry", `Queue job ${job.id} (${job.function}) again?`, "POST", "/retry") }, "Retry"));
    }
    if (can("delete")) {
      actions.append(h("button", { type: "button", id: "delete", class: "danger", onclick: () =>
        act("Delete", `Delete job ${job.id} for good, whatever its status?`, "DELETE", "") }, "Delete"));
    }
    const times = [
      ["created", job.created], ["scheduled", job.scheduled], ["queued", job.queued],
      ["started", job.started], [job.status === "complete" ? "completed" : "finished", job.completed],
      ["last change", job.touched],
    ].filter(([, t]) => t > 0).sort((a, b) => a[1] - b[1]);
    const timeline = h("ol", { class: "timeline", id: "timeline" }, times.map(([label, t]) =>
      h("li", {}, h("b", {}, label), " ", h("time", { datetime: new Date(t * 1000).toISOString() },
        localTime(t)), h("span", { class: "muted" }, ` (${ago(t)})`))));
    const curl = curlLine(job);
    const fields = h("dl", { class: "fields" },
      h("dt", {}, "Queue"), h("dd", {}, h("a", { href: queueUrl(job.queue) }, job.queue)),
      h("dt", {}, "Function"), h("dd", { id: "function" }, job.function),
      h("dt", {}, "Status"), h("dd", { id: "status" }, statusChip(job.status)),
      h("dt", {}, "Attempts"), h("dd", { id: "attempts" },
        `${job.attempts} of ${job.retries + 1}${job.attempts > 1 ? ` (${job.attempts - 1} retr${job.attempts === 2 ? "y" : "ies"})` : ""}`),
      h("dt", {}, "Key"), h("dd", {}, job.key || "—"),
      h("dt", {}, "Priority"), h("dd", {}, job.priority),
      h("dt", {}, "Timeout"), h("dd", {}, job.timeout ? duration(job.timeout) : "none"),
      h("dt", {}, "Worker"), h("dd", {}, job.worker || "—"),
      h("dt", {}, "Progress"), h("dd", {}, h("progress", { id: "progress", max: 1, value: job.progress }),
        ` ${Math.round(job.progress * 100)} %`),
    );
    const sections = [
      h("h1", {}, `Job ${job.id}`),
      actions,
      h("div", { class: "card" }, fields),
      h("h2", {}, "Timeline"),
      h("div", { class: "card" }, timeline,
        job.attempts > 1 ? h("p", { class: "muted" },
          "Only the latest attempt's start is stored; earlier attempts count in Attempts.") : null),
    ];
    if (job.error) {
      sections.push(h("h2", {}, "Error"), h("div", { class: "card", id: "error" },
        h("p", { class: "error" }, h("b", {}, job.error.type), `: ${job.error.message}`),
        job.error.traceback ? h("pre", { id: "traceback" }, job.error.traceback) : null));
    }
    sections.push(
      h("h2", {}, "Arguments"), h("div", { class: "card" }, h("pre", { id: "kwargs" }, json(job.kwargs))),
      h("h2", {}, "Result"), h("div", { class: "card" }, h("pre", { id: "result" }, json(job.result))),
      h("h2", {}, "Meta"), h("div", { class: "card" }, h("pre", { id: "meta" }, json(job.meta))),
      h("h2", {}, "Fetch it with curl"), curl,
    );
    const focused = document.activeElement && main.contains(document.activeElement)
      ? document.activeElement.id : "";
    replace(main, sections);
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  }

  function curlLine(current) {
    const header = session.me.auth ? ` -H "Authorization: Bearer $JOBWIRE_TOKEN"` : "";
    const url = `${location.origin}/v1/jobs/${encodeURIComponent(current.id)}?queue=${encodeURIComponent(current.queue)}`;
    const text = `curl -s${header} '${url}'`;
    const code = h("code", { id: "curl" }, text);
    const button = h("button", { type: "button", onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        getSelection().selectAllChildren(code);
        button.textContent = "Selected: press Ctrl+C";
      }
    } }, "Copy");
    return h("div", { class: "curl card" }, code, button);
  }

  // Live while it runs: the job's SSE stream; if that breaks, long-polls.
  async function watch() {
    if (watching) watching.abort();
    if (FINISHED.has(job.status)) return;
    const controller = new AbortController();
    watching = controller;
    try {
      await streamEvents(`${path}/events${hint}`, (event, data) => {
        if (event === "job") render(JSON.parse(data));
        else if (event === "deleted") showBanner(new Error("This job was deleted."));
      }, controller.signal);
    } catch (error) {
      if (controller.signal.aborted) return;
      while (!controller.signal.aborted && !FINISHED.has(job.status)) {
        try {
          render(await api("GET", `${path}?wait=30${queueHint ? `&queue=${encodeURIComponent(queueHint)}` : ""}`));
        } catch (failure) {
          showBanner(failure);
          await new Promise((resolve) => setTimeout(resolve, 5000));
        }
      }
    }
  }

  api("GET", `${path}${hint}`).then((current) => {
    render(current);
    watch();
  }).catch((error) => {
    if (error.status !== 401) replace(main, h("h1", {}, `Job ${jobId}`), h("p", { class: "banner", role: "alert" }, error.message));
  });
}

// ---- start ----

async function start() {
  try {
    session.me = await api("GET", "/v1/whoami");
  } catch (error) {
    if (error.status !== 401) replace(main, h("p", { class: "banner", role: "alert" }, error.message));
    return;
  }
  renderSession();
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[1] === "queues" && parts[2]) queuePage(parts[2]);
  else if (parts[1] === "jobs" && parts[2]) jobPage(parts[2]);
  else overview();
}

window.addEventListener(SIGNED_OUT, (event) => showLogin(event.detail));
start();
