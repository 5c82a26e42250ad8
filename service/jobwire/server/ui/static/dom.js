// Building the page: elements from text nodes only (data is never parsed as HTML),
// readable values, and the shell's banner and confirmation dialog.

export const main = document.getElementById("main");

export function h(tag, attrs = {}, ...children) {
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

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export const svg = (tag, attrs) => {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
};

// ---- formatting ----

export function localTime(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "—";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export const ago = (epoch) => (epoch ? `${duration(Date.now() / 1000 - epoch)} ago` : "—");
export const json = (value) => JSON.stringify(value, null, 2);
export const statusChip = (status) => h("span", { class: `status ${status}`, "data-status": status }, status);
export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

// ---- banner and confirmation ----

export function showBanner(error) {
  let banner = document.getElementById("banner");
  if (!banner) {
    banner = h("div", { id: "banner", class: "banner", role: "alert" });
    main.prepend(banner);
  }
  banner.textContent = error ? `${error.status ? `${error.status}: ` : ""}${error.message}` : "";
  banner.hidden = !error;
}

export function clearBanner() {
  const banner = document.getElementById("banner");
  if (banner) banner.hidden = true;
}

export function confirmAction(title, text, okLabel) {
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
