// Jobwire dashboard: one small module of our own, no dependencies, no build step.
// Everything it shows comes from the REST API with the viewer's bearer token (kept in
// sessionStorage, never rendered); it builds the DOM with textContent only.

const TOKEN_KEY = "jobwire.token";
const STATUSES = ["queued", "scheduled", "active", "aborting", "complete", "failed", "aborted"];
const FINISHED = new Set(["complete", "failed", "aborted"]);
const OVERVIEW_EVERY_MS = 2000; // never faster than once a second
const QUEUE_EVERY_MS = 3000;
const INFO_EVERY = 5; // overview ticks between reads of each queue's workers
const CHART_SAMPLES = 150; // five minutes at OVERVIEW_EVERY_MS
const STUCK_AFTER_S = 60;
const PAGE_SIZE = 50;
const NARROW_HIDDEN = new Set(["scheduled", "aborting", "aborted"]); // on a phone's width

const main = document.getElementById("main");
let me = null; // {role, permissions, auth} from GET /v1/whoami

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---- DOM helpers (text nodes only: data is never parsed as HTML) ----

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

const svg = (tag, attrs) => {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
};

// ---- formatting ----

function localTime(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "—";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

const ago = (epoch) => (epoch ? `${duration(Date.now() / 1000 - epoch)} ago` : "—");
const json = (value) => JSON.stringify(value, null, 2);
const statusChip = (status) => h("span", { class: `status ${status}`, "data-status": status }, status);
const can = (permission) => Boolean(me && me.permissions.includes(permission));
const jobUrl = (job) => `/ui/jobs/${encodeURIComponent(job.id)}?queue=${encodeURIComponent(job.queue)}`;
const queueUrl = (name) => `/ui/queues/${encodeURIComponent(name)}`;

// ---- the API ----

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function api(method, path, body) {
  const headers = authHeaders();
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const failure = new ApiError(response.status, error.code, error.message || response.statusText);
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(failure.message);
    }
    throw failure;
  }
  return data;
}

// Server-Sent Events over fetch (EventSource cannot send the bearer header).
async function streamEvents(path, onEvent, signal) {
  const response = await fetch(path, { headers: authHeaders(), signal });
  if (!response.ok) throw new ApiError(response.status, "", response.statusText);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
      }
      if (data.length) onEvent(event, data.join("\n"));
    }
  }
}

// A refresh loop: runs fn, then again `every` ms after it finished (while the tab shows).
function live(every, fn) {
  let timer = null;
  const tick = async () => {
    try {
      if (!document.hidden) await fn();
    } catch (error) {
      if (error.status === 401) return; // the login form took over
      showBanner(error);
    }
    timer = setTimeout(tick, every);
  };
  tick();
  return () => clearTimeout(timer);
}

function showBanner(error) {
  let banner = document.getElementById("banner");
  if (!banner) {
    banner = h("div", { id: "banner", class: "banner", role: "alert" });
    main.prepend(banner);
  }
  banner.textContent = error ? `${error.status ? `${error.status}: ` : ""}${error.message}` : "";
  banner.hidden = !error;
}

function clearBanner() {
  const banner = document.getElementById("banner");
  if (banner) banner.hidden = true;
}

// ---- confirmation ----

function confirmAction(title, text, okLabel) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

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
  const parts = [h("span", { id: "role" }, `role: ${me.role}`)];
  if (me.auth) {
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
      STATUSES.map((s) => h("th", { class: `num${NARROW_HIDDEN.has(s) ? " hide-narrow" : ""}` }, s)),
      h("th", { class: "num" }, "Oldest queued"),
      h("th", { class: "num" }, "Workers"),
      h("th", { class: "num hide-narrow", title: "finished per second over the last 5 minutes" },
        "Done/s"),
      h("th", { class: "hide-narrow" }, h("span", { class: "legend" },
        h("span", { class: "c" }, "completed"), " / ", h("span", { class: "f" }, "failed"), " per s")),
    )),
    body);
  const updated = h("p", { class: "muted", id: "updated" });
  replace(main, h("h1", {}, "Queues"), h("div", { class: "card" }, table), updated);

  // Counting a big queue costs the store: counts (GET /v1/queues) are read every tick,
  // each queue's info (workers, throughput; it counts again) every INFO_EVERY ticks.
  const infos = new Map();
  let ticks = 0;
  live(OVERVIEW_EVERY_MS, async () => {
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
      const waiting = (info.counts.queued || 0) > 0;
      return h("tr", { "data-queue": info.name },
        h("td", {}, h("a", { href: queueUrl(info.name) }, info.name)),
        STATUSES.map((s) => h("td", {
          class: `num${NARROW_HIDDEN.has(s) ? " hide-narrow" : ""}`, "data-count": s },
          h("a", { href: `${queueUrl(info.name)}?status=${s}`,
            "aria-label": `${info.name}: ${info.counts[s] || 0} ${s}` }, info.counts[s] || 0))),
        h("td", { class: `num${age !== null && age > STUCK_AFTER_S ? " stuck" : ""}`,
          "data-field": "oldest" }, age === null ? "—" : duration(age)),
        h("td", { class: `num${waiting && workers === 0 ? " stuck" : ""}`, "data-field": "workers" },
          workers),
        h("td", { class: "num hide-narrow" }, (info.finished_per_s || 0).toFixed(2)),
        h("td", { class: "hide-narrow" }, chart(samples)),
      );
    });
    replace(body, rows.length ? rows
      : h("tr", {}, h("td", { colspan: STATUSES.length + 5, class: "muted" }, "No queues yet.")));
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

function queuePage(name) {
  document.title = `${name} · Jobwire`;
  crumbs(["Queues", "/ui"], [name, null]);
  const counts = h("p", { id: "counts" });
  const statusSelect = h("select", { id: "filter-status", name: "status" },
    h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s)));
  const functionInput = h("input", { id: "filter-function", name: "function", placeholder: "any",
    size: 18, maxlength: 200 });
  const jobIdInput = h("input", { id: "goto-id", name: "id", placeholder: "job id", size: 18 });
  const filters = h("form", { class: "filters", id: "filters", onsubmit: (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (statusSelect.value) params.set("status", statusSelect.value);
    if (functionInput.value.trim()) params.set("function", functionInput.value.trim());
    history.pushState(null, "", `${location.pathname}?${params}`);
    load();
  } },
  h("label", {}, "Status", statusSelect),
  h("label", {}, "Function", functionInput),
  h("button", { type: "submit", class: "primary" }, "Filter"));
  const gotoForm = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    if (jobIdInput.value.trim()) {
      location.href = jobUrl({ id: jobIdInput.value.trim(), queue: name });
    }
  } }, h("label", {}, "Open a job by id", jobIdInput), h("button", { type: "submit" }, "Open"));
  const jobsBody = h("tbody");
  const pager = h("div", { class: "pager" });
  const workersBody = h("tbody");
  replace(main,
    h("h1", {}, `Queue ${name}`),
    counts,
    h("div", { class: "card" }, h("div", { class: "actions" }, filters, gotoForm),
      h("table", { id: "jobs" }, h("thead", {}, h("tr", {},
        h("th", {}, "Job"), h("th", {}, "Function"), h("th", {}, "Status"),
        h("th", { class: "num hide-narrow" }, "Attempts"), h("th", { class: "hide-narrow" }, "Key"),
        h("th", {}, "Created"), h("th", { class: "hide-narrow" }, "Error"))), jobsBody),
      pager),
    h("h2", {}, "Workers (seen in the last minute)"),
    h("div", { class: "card" }, h("table", { id: "workers" }, h("thead", {}, h("tr", {},
      h("th", {}, "Id"), h("th", { class: "hide-narrow" }, "Host"), h("th", {}, "Functions"),
      h("th", { class: "num hide-narrow" }, "Concurrency"), h("th", { class: "num" }, "Running"),
      h("th", {}, "Transport"), h("th", {}, "Last seen"))), workersBody)));

  const params = () => new URLSearchParams(location.search);

  async function load() {
    const p = params();
    statusSelect.value = p.get("status") || "";
    functionInput.value = p.get("function") || "";
    const query = new URLSearchParams({ limit: String(Number(p.get("limit")) || PAGE_SIZE) });
    for (const key of ["status", "function", "cursor"]) if (p.get(key)) query.set(key, p.get(key));
    const page = await api("GET", `/v1/queues/${encodeURIComponent(name)}/jobs?${query}`);
    replace(jobsBody, page.jobs.length ? page.jobs.map((job) => h("tr", { "data-job": job.id },
      h("td", { class: "wrap jobid" }, h("a", { href: jobUrl(job) }, job.id)),
      h("td", {}, job.function),
      h("td", {}, statusChip(job.status)),
      h("td", { class: "num hide-narrow" }, `${job.attempts}/${job.retries + 1}`),
      h("td", { class: "wrap hide-narrow" }, job.key || ""),
      h("td", { title: ago(job.created) }, localTime(job.created)),
      h("td", { class: "wrap hide-narrow" }, job.error ? `${job.error.type}: ${job.error.message}` : ""),
    )) : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No jobs match.")));
    const buttons = [];
    if (p.get("cursor")) {
      buttons.push(h("button", { type: "button", onclick: () => history.back() }, "← Previous"));
      const first = new URLSearchParams(p);
      first.delete("cursor");
      buttons.push(h("a", { href: `?${first}` }, "First page"));
    }
    if (page.next_cursor) {
      buttons.push(h("button", { type: "button", id: "next", onclick: () => {
        const next = new URLSearchParams(params());
        next.set("cursor", page.next_cursor);
        history.pushState(null, "", `?${next}`);
        load();
      } }, "Next →"));
    }
    replace(pager, buttons);
  }

  async function loadInfo() {
    const info = await api("GET", `/v1/queues/${encodeURIComponent(name)}`);
    replace(counts, STATUSES.map((s) => [
      h("a", { href: `?status=${s}`, "data-count": s }, `${s}: ${info.counts[s] || 0}`), " "]));
    const now = Date.now() / 1000;
    replace(workersBody, info.workers.length ? info.workers.map((w) => h("tr", { "data-worker": w.id },
      h("td", { class: "wrap jobid" }, w.id), h("td", { class: "hide-narrow" }, w.host || "—"),
      h("td", { class: "wrap" }, (w.functions || []).join(", ")),
      h("td", { class: "num hide-narrow" }, w.concurrency ?? "—"),
      h("td", { class: "num" }, w.running ?? "—"),
      h("td", {}, w.transport || "store"),
      h("td", { title: localTime(w.seen) }, w.seen ? `${duration(now - w.seen)} ago` : "—"),
    )) : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No worker seen in the last minute.")));
  }

  window.addEventListener("popstate", () => load().catch(showBanner));
  live(QUEUE_EVERY_MS, async () => {
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
    const header = me.auth ? ` -H "Authorization: Bearer $JOBWIRE_TOKEN"` : "";
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
    me = await api("GET", "/v1/whoami");
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

start();
