// DOM helpers for the console. Everything that comes from the API (entity ids, policy texts,
// error messages) may hold '<script>', quotes or NUL bytes, so data only ever enters the page as
// text nodes or as the value of a harmless attribute: nothing here parses HTML.

/** The element with id `id`. */
export const byId = (id) => document.getElementById(id);

// Attributes el() accepts; event handlers are given as functions ("onclick": fn). Anything else
// (href, src, style, on*="...") is refused, so a caller cannot route data into a dangerous one.
const SAFE_ATTRS = new Set(['id', 'class', 'type', 'name', 'value', 'for', 'title', 'placeholder',
  'tabindex', 'role', 'colspan', 'disabled', 'hidden', 'lang', 'spellcheck', 'autocomplete',
  'aria-label', 'aria-live', 'aria-current', 'aria-selected']);

/**
 * Creates `<tag>` with attributes and children. `attrs.testid` becomes data-testid, other data-*
 * keys pass through; children are nodes, or strings and numbers that become text nodes; null,
 * undefined and false are skipped; arrays are flattened.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function' && key.startsWith('on')) {
      node.addEventListener(key.slice(2), value);
    } else if (key === 'testid') {
      node.setAttribute('data-testid', String(value));
    } else if (key.startsWith('data-') || SAFE_ATTRS.has(key)) {
      node.setAttribute(key, value === true ? '' : String(value));
    } else {
      throw new Error(`el(): attribute ${key} is not allowed`);
    }
  }
  append(node, children);
  return node;
}

/** Appends children as el() does. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces the children of `node` (by id or element) with `children`. */
export function fill(node, ...children) {
  const target = typeof node === 'string' ? byId(node) : node;
  target.replaceChildren();
  return append(target, children);
}

/** Sets the text of the element with id `id`. */
export function setText(id, value) {
  byId(id).textContent = value === undefined || value === null ? '' : String(value);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Unix milliseconds as local "YYYY-MM-DD HH:MM:SS.mmm". */
export function formatTime(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A count with thousands separators. */
export const formatCount = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');

/** An entity reference as Cedar writes it, id raw (the text is rendered as text, never parsed). */
export function entityRef(e) {
  if (!e || typeof e !== 'object') return '—';
  return `${e.type ?? '?'}::"${e.id ?? ''}"`;
}
