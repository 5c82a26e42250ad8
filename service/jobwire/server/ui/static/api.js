// The REST API with the viewer's bearer token (kept in sessionStorage, never rendered),
// the refresh loop, and what the viewer's role may do.

import { showBanner } from "./dom.js";

export const TOKEN_KEY = "jobwire.token";
// Sent when the service refuses the token (401): the page asks for another.
export const SIGNED_OUT = "jobwire:signed-out";

export const session = { me: null }; // {role, permissions, auth} from GET /v1/whoami
export const can = (permission) => Boolean(session.me && session.me.permissions.includes(permission));

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

export async function api(method, path, body) {
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
      window.dispatchEvent(new CustomEvent(SIGNED_OUT, { detail: failure.message }));
    }
    throw failure;
  }
  return data;
}

// Server-Sent Events over fetch (EventSource cannot send the bearer header).
export async function streamEvents(path, onEvent, signal) {
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
// Returns a function that runs fn now (after the run under way, if any), for an action
// whose effect the viewer should see at once.
export function live(every, fn) {
  let timer = null;
  let running = false;
  let again = false;
  const tick = async () => {
    clearTimeout(timer);
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      if (!document.hidden) await fn();
    } catch (error) {
      if (error.status === 401) return; // the sign-in form took over
      showBanner(error);
    } finally {
      running = false;
    }
    if (again) {
      again = false;
      tick();
    } else {
      timer = setTimeout(tick, every);
    }
  };
  tick();
  return tick;
}
