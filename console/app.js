// The govmesh governance console: dashboard, lineage explorer with in-browser proof checks,
// and what-if evaluation, over the JSON API under /api/v1/ (docs/console.md).
// Plain ES modules, no framework; data is only ever rendered as text (see dom.js).
import { byId, el, fill, setText, formatTime, formatCount, entityRef } from './dom.js';
import { verifyProof, tamperedCopy, parsePublicKey, toHex } from './proof.js';

const POLL_MS = 1000;
const CHART_WINDOW_MS = 10 * 60 * 1000;  // the whole of the node's per-second ring
const TOKEN_KEY = 'govmesh.console.token';

// ---------------------------------------------------------------------------------------------
// API access: bearer token from sessionStorage; a 401 asks for one (one prompt shared by all
// requests waiting on it) and retries.

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
let tokenPrompt = null;
let tokenDeclined = false;  // after Cancel, no more prompts until the status line is clicked

function askToken() {
  if (tokenPrompt) return tokenPrompt;
  tokenPrompt = new Promise((resolve, reject) => {
    const dialog = byId('token-dialog');
    const form = byId('token-form');
    const input = byId('token-input');
    const done = (value) => {
      dialog.hidden = true;
      form.removeEventListener('submit', onSubmit);
      byId('token-cancel').removeEventListener('click', onCancel);
      tokenPrompt = null;
      if (value === null) {
        tokenDeclined = true;
        reject(new ApiError(401, 'an access token is needed (click here to enter one)'));
      } else {
        resolve(value);
      }
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      token = input.value.trim();
      sessionStorage.setItem(TOKEN_KEY, token);
      input.value = '';
      done(token);
    };
    const onCancel = () => done(null);
    form.addEventListener('submit', onSubmit);
    byId('token-cancel').addEventListener('click', onCancel);
    dialog.hidden = false;
    input.focus();
  });
  return tokenPrompt;
}

/** Fetches JSON from the API; throws ApiError with the server's {"error"} text on failure. */
async function api(path, init = {}) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const headers = new Headers(init.headers ?? {});
    if (token) headers.set('Authorization', `Bearer ${token}`);
    let res;
    try {
      res = await fetch(path, { ...init, headers, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, `the node is unreachable (${e.message})`);
    }
    if (res.status === 401) {
      if (tokenDeclined) throw new ApiError(401, 'an access token is needed (click here to enter one)');
      await askToken();
      continue;
    }
    let body = null;
    try { body = await res.json(); } catch { /* not JSON: reported below by status */ }
    if (!res.ok) {
      const msg = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
      throw new ApiError(res.status, msg);
    }
    return body;
  }
  throw new ApiError(401, 'the token was refused');
}

byId('conn').addEventListener('click', () => {
  if (!tokenDeclined) return;
  tokenDeclined = false;
  askToken().then(() => { if (currentView === 'dashboard') pollDashboard(); }, () => {});
});

function setConnection(ok, message) {
  const c = byId('conn');
  c.dataset.state = ok ? 'ok' : 'error';
  c.textContent = message;
}

// ---------------------------------------------------------------------------------------------
// Routing: #/dashboard, #/lineage, #/lineage/<seq> (a record open), #/whatif.

const views = ['dashboard', 'lineage', 'whatif'];
let currentView = '';

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const view = views.includes(parts[0]) ? parts[0] : 'dashboard';
  for (const v of views) {
    byId(`view-${v}`).hidden = v !== view;
    const link = byId(`nav-${v}`);
    if (v === view) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  const entered = view !== currentView;
  currentView = view;
  if (view === 'dashboard' && entered) pollDashboard();
  if (view === 'lineage') {
    if (entered && !lineage.loaded) search();
    const seq = Number(parts[1]);
    if (parts[1] && Number.isSafeInteger(seq) && seq > 0) openRecord(seq);
    else byId('record').hidden = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Dashboard: status and series polled once a second while the dashboard is shown.

let lastStatus = null;
let clockSkewMs = 0;          // server now_ms minus local time at the last status
let pollTimer = 0;
let polling = false;

async function pollDashboard() {
  clearTimeout(pollTimer);
  if (polling) return;
  if (document.hidden) {  // a background tab need not poll; visibilitychange resumes
    pollTimer = setTimeout(pollDashboard, POLL_MS);
    return;
  }
  polling = true;
  try {
    const [status, series] = await Promise.all([api('/api/v1/status'), api('/api/v1/series')]);
    if (typeof status?.now_ms === 'number') clockSkewMs = status.now_ms - Date.now();
    lastStatus = status;
    renderStatus(status);
    renderSeries(series);
    setConnection(true, `live · ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    setConnection(false, e.message);
  } finally {
    polling = false;
    if (currentView === 'dashboard') pollTimer = setTimeout(pollDashboard, POLL_MS);
  }
}

function renderStatus(s) {
  setText('node-id', s.node_id ?? '—');
  setText('node-state', s.state ?? '—');
  byId('node-state').dataset.state = s.state ?? '';
  setText('state-reason', s.state_reason ?? '');
  setText('backend', s.backend ?? '—');
  setText('queue-depth', formatCount(s.queue_depth));
  const b = s.bundle;
  setText('bundle-revision', b ? b.revision : 'no bundle');
  setText('bundle-digest', b ? b.digest : '—');
  setText('bundle-policies', b ? formatCount(b.policy_count) : '—');
  setText('bundle-source', b ? `${b.source ?? '—'} (loaded ${formatTime(b.loaded_at_ms)})` : '—');
  const t = s.totals ?? {};
  const allow = Number(t.allow ?? 0);
  const deny = Number(t.deny ?? 0);
  setText('total-decisions', formatCount(allow + deny));
  setText('total-allow', formatCount(allow));
  setText('total-deny', formatCount(deny));
  setText('lineage-size', s.lineage?.enabled === false ? 'disabled' : formatCount(s.lineage?.size));
  setText('checkpoint-size', s.lineage?.enabled === false ? '—' : formatCount(s.lineage?.latest_checkpoint_size));
  // The node lists every deny code; the table shows those that occurred, most frequent first.
  const codes = Object.entries(t.deny_by_code ?? {});
  fill('deny-codes', codes.filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).map(([code, n]) =>
    el('tr', {}, el('td', { class: 'hash' }, code), el('td', {}, formatCount(n)))));
  // The lineage search offers all of them.
  const list = byId('code-list');
  if (list.childElementCount !== codes.length) fill(list, codes.map(([code]) => el('option', { value: code })));
  const mesh = s.mesh;
  setText('mesh', mesh && typeof mesh === 'object'
    ? `etcd revision ${mesh.etcd_revision ?? '—'}` +
      (typeof mesh.last_heard_ms === 'number' ? `, heard ${formatDuration(Math.max(0, Date.now() + clockSkewMs - mesh.last_heard_ms))} ago` : '')
    : 'standalone');
  renderCountdown();
}

/** Time left until the bundle's freshness deadline; amber under 25 %, red under 10 %. */
function renderCountdown() {
  const out = byId('countdown');
  const bar = byId('countdown-bar');
  const s = lastStatus;
  const b = s?.bundle;
  let level = 'none';
  let label = '—';
  let fraction = 0;
  if (!s) {
    // nothing yet
  } else if (!b) {
    label = 'no bundle';
    level = 'stale';
  } else if (typeof b.fresh_until_ms !== 'number' || b.fresh_until_ms <= 0) {
    label = 'no deadline';
    level = 'ok';
    fraction = 1;
  } else {
    const left = b.fresh_until_ms - (Date.now() + clockSkewMs);
    const span = Math.max(1, b.fresh_until_ms - (b.issued_at_ms ?? b.loaded_at_ms ?? 0));
    fraction = Math.max(0, Math.min(1, left / span));
    if (s.state === 'stale' || left <= 0) {
      label = 'STALE';
      level = 'stale';
      fraction = 0;
    } else {
      label = `${formatDuration(left)} left`;
      level = fraction < 0.10 ? 'red' : fraction < 0.25 ? 'amber' : 'ok';
    }
  }
  out.textContent = label;
  out.dataset.level = level;
  bar.dataset.level = level;
  bar.style.width = `${(fraction * 100).toFixed(1)}%`;
}

function formatDuration(ms) {
  const total = Math.floor(ms / 1000);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  const hms = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
  return d > 0 ? `${d}d ${hms}` : hms;
}

// Charts (uPlot). The deny-code chart is rebuilt when the set of codes changes.
const COLORS = ['#c2382f', '#d9822b', '#8e44ad', '#2d5fa8', '#16a085', '#7f8c8d', '#b7950b', '#6d4c41'];
let rateChart = null;
let codesChart = null;
let codesKey = '';

/** A colour per deny code that stays the same whichever other codes are on the chart. */
function codeColor(code) {
  let h = 0;
  for (const ch of code) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return code === 'NONE' ? '#6b7280' : COLORS[h % COLORS.length];
}

function chartWidth(id) {
  return Math.max(320, byId(id).clientWidth || 600);
}

function makeChart(id, series, data) {
  if (typeof window.uPlot !== 'function') {
    fill(id, el('p', { class: 'error' }, 'chart library not loaded'));
    return null;
  }
  byId(id).replaceChildren();
  return new window.uPlot({
    width: chartWidth(id), height: 220,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    series: [{}, ...series],
    axes: [{}, { size: 60 }],
    legend: { live: true },
  }, data, byId(id));
}

function renderSeries(series) {
  const points = Array.isArray(series?.points) ? series.points : [];
  const last = points.length ? points[points.length - 1].t_ms : 0;
  const shown = points.filter((p) => p.t_ms >= last - CHART_WINDOW_MS);
  const xs = shown.map((p) => p.t_ms / 1000);
  const rateData = [xs, shown.map((p) => p.allow ?? 0), shown.map((p) => p.deny ?? 0)];
  if (!rateChart) {
    rateChart = makeChart('chart-rate', [
      { label: 'allow/s', stroke: '#23864a', width: 1.5 },
      { label: 'deny/s', stroke: '#c2382f', width: 1.5 },
    ], rateData);
  } else {
    rateChart.setData(rateData);
  }
  const codes = [...new Set(shown.flatMap((p) => Object.keys(p.deny_by_code ?? {})))].sort();
  const codeData = [xs, ...codes.map((c) => shown.map((p) => p.deny_by_code?.[c] ?? 0))];
  const key = codes.join('\n');
  if (!codesChart || key !== codesKey) {
    codesChart?.destroy();
    codesKey = key;
    codesChart = makeChart('chart-codes',
      codes.map((c) => ({ label: c, stroke: codeColor(c), width: 1.5 })), codeData);
  } else {
    codesChart.setData(codeData);
  }
}

window.addEventListener('resize', () => {
  for (const [chart, id] of [[rateChart, 'chart-rate'], [codesChart, 'chart-codes']]) {
    chart?.setSize({ width: chartWidth(id), height: 220 });
  }
});

// Admin needs the token even where reads do not; a refusal (403: no token configured, or a wrong
// one) makes the next click ask for the token again.
let adminRefused = false;
byId('reload-bundle').addEventListener('click', async () => {
  setText('reload-result', '…');
  try {
    if (!token || adminRefused) { tokenDeclined = false; await askToken(); }
    await api('/api/v1/admin/reload', { method: 'POST' });
    adminRefused = false;
    setText('reload-result', 'reload requested');
  } catch (e) {
    adminRefused = e.status === 403;
    setText('reload-result', adminRefused ? `refused: ${e.message}` : e.message);
  }
});

// ---------------------------------------------------------------------------------------------
// Lineage explorer: search, page (newest first), open a record, verify its proof.

const lineage = { query: null, before: null, newer: [], next: null, loaded: false };

function queryFromForm() {
  const form = new FormData(byId('lineage-form'));
  const q = new URLSearchParams();
  for (const name of ['principal', 'action', 'resource', 'decision', 'code', 'limit']) {
    const v = String(form.get(name) ?? '');
    if (v !== '') q.set(name, v);
  }
  for (const [name, param] of [['from', 'from_ms'], ['to', 'to_ms']]) {
    const v = String(form.get(name) ?? '');
    if (v !== '') {
      const ms = new Date(v).getTime();
      if (Number.isFinite(ms)) q.set(param, String(ms));
    }
  }
  return q;
}

async function search(before = null) {
  lineage.loaded = true;
  if (before === null) { lineage.query = queryFromForm(); lineage.newer = []; }
  const q = new URLSearchParams(lineage.query);
  if (before !== null) q.set('before_seq', String(before));
  lineage.before = before;
  setText('lineage-error', '');
  byId('lineage-summary').textContent = 'searching…';
  let res;
  try {
    res = await api(`/api/v1/lineage?${q}`);
  } catch (e) {
    setText('lineage-error', e.message);
    setText('lineage-summary', '');
    return;
  }
  const records = Array.isArray(res.records) ? res.records : [];
  fill('lineage-rows', records.map(recordRow));
  lineage.next = typeof res.next_before_seq === 'number' ? res.next_before_seq : null;
  byId('page-older').disabled = lineage.next === null;
  byId('page-newer').disabled = lineage.newer.length === 0;
  byId('page-newest').disabled = before === null;
  // The filters are echoed back as text: they are whatever the user (or a link) typed.
  const filters = [...lineage.query].filter(([k]) => k !== 'limit').map(([k, v]) => `${k}=${v}`);
  setText('lineage-summary',
    `${records.length} record${records.length === 1 ? '' : 's'}` +
    (filters.length ? ` matching ${filters.join(', ')}` : '') +
    ` · scanned ${formatCount(res.scanned)} of ${formatCount(res.size)}` +
    (res.truncated ? ' · the scan stopped early: narrow the search or page on' : ''));
}

function recordRow(r) {
  const open = () => { location.hash = `#/lineage/${r.seq}`; };
  return el('tr', {
    tabindex: 0, testid: 'lineage-row', 'data-seq': r.seq,
    onclick: open, onkeydown: (ev) => { if (ev.key === 'Enter') open(); },
  },
  el('td', {}, r.seq),
  el('td', {}, formatTime(r.time_ms)),
  el('td', {}, entityRef(r.principal)),
  el('td', {}, entityRef(r.action)),
  el('td', {}, entityRef(r.resource)),
  el('td', { class: r.decision === 'allow' ? 'allow' : 'deny' }, r.decision),
  el('td', { class: 'hash' }, r.decision === 'deny' ? r.deny_code : ''),
  el('td', {}, (r.reasons ?? []).join(', ')),
  el('td', {}, r.bundle_revision));
}

byId('lineage-form').addEventListener('submit', (ev) => { ev.preventDefault(); search(); });
byId('page-older').addEventListener('click', () => {
  if (lineage.next === null) return;
  lineage.newer.push(lineage.before);
  search(lineage.next);
});
byId('page-newer').addEventListener('click', () => {
  if (lineage.newer.length === 0) return;
  const before = lineage.newer.pop();
  search(before);
});
byId('page-newest').addEventListener('click', () => { lineage.newer = []; search(null); });
byId('record-close').addEventListener('click', () => { location.hash = '#/lineage'; });

let openSeq = 0;
let openDetail = null;  // the JSON of the open record, once loaded: what a proof must match
let lastProof = null;
let proofRun = 0;       // bumped by every reset and verification: a late result is dropped

function policyBlock(p) {
  return el('div', { class: 'policy', testid: 'policy' },
    el('div', {}, el('strong', {}, p.id ?? '?'), ' ', el('span', { class: `badge ${p.effect === 'permit' ? 'allow' : 'deny'}` }, p.effect ?? '?'),
      typeof p.template === 'string' ? el('span', { class: 'muted' }, ` linked from template ${p.template}`) : null),
    el('pre', { testid: 'policy-text' }, p.text ?? ''));
}

function listOrNone(items, testid) {
  if (!Array.isArray(items) || items.length === 0) return el('p', { class: 'muted', testid }, 'none');
  return el('ul', { testid }, items.map((x) => el('li', {}, typeof x === 'string' ? x : JSON.stringify(x))));
}

async function openRecord(seq) {
  openSeq = seq;
  openDetail = null;
  const panel = byId('record');
  panel.hidden = false;
  panel.scrollIntoView({ block: 'start' });
  setText('record-title', `Record #${seq}`);
  fill('record-body', el('p', { class: 'muted' }, 'loading…'));
  resetProof();
  let r;
  try {
    r = await api(`/api/v1/lineage/${seq}`);
  } catch (e) {
    if (openSeq === seq) fill('record-body', el('p', { class: 'error' }, e.message));
    return;
  }
  if (openSeq !== seq) return;
  openDetail = r;
  showPin();
  const row = (label, value, cls) => [el('dt', {}, label), el('dd', cls ? { class: cls } : {}, value ?? '—')];
  const ev = r.evidence;
  fill('record-body',
    el('dl', { testid: 'record-fields' },
      row('time', formatTime(r.time_ms)),
      row('node', r.node_id),
      [el('dt', {}, 'decision'), el('dd', {},
        el('span', { class: r.decision === 'allow' ? 'allow' : 'deny', testid: 'record-decision' }, r.decision),
        r.decision === 'deny' ? ` (${r.deny_code})` : '')],
      row('principal', entityRef(r.principal)),
      row('action', entityRef(r.action)),
      row('resource', entityRef(r.resource)),
      row('bundle', r.bundle ? `revision ${r.bundle.revision}${r.bundle.known ? '' : ' (text no longer held by this node)'}` : '—'),
      row('bundle digest', r.bundle?.digest, 'hash'),
      row('request digest', r.request_digest, 'hash'),
      row('context digest', r.context_digest, 'hash'),
      row('signature', r.signature, 'hash'),
      row('etcd revision', r.etcd_revision ?? '—')),
    el('p', {}, el('button', { type: 'button', testid: 'record-whatif', onclick: () => whatIfFrom(r) },
      'What-if with this request…')),
    el('h3', {}, 'Reasons'), listOrNone(r.reasons, 'record-reasons'),
    el('h3', {}, 'Policies'),
    Array.isArray(r.policies) && r.policies.length ? r.policies.map(policyBlock) : el('p', { class: 'muted' }, 'none'),
    el('h3', {}, 'Errors'), listOrNone(r.errors, 'record-errors'),
    el('h3', {}, 'Evidence'),
    ev ? el('dl', { testid: 'record-evidence' },
      row('key id', ev.key_id, 'hash'), row('nonce', ev.nonce, 'hash'),
      row('payload digest', ev.payload_digest ?? '—', 'hash'),
      [el('dt', {}, 'context'), el('dd', {}, typeof ev.context_error === 'string'
        ? el('span', { class: 'error' }, ev.context_error)
        : el('pre', {}, JSON.stringify(ev.context ?? null, null, 2)))])
      : el('p', { class: 'muted' }, 'none (unsigned request)'));
}

/** An entity reference as Cedar source, the id escaped, for the what-if form. */
function cedarRef(e) {
  const escape = { '\\': '\\\\', '"': '\\"', '\0': '\\0', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return `${e?.type ?? ''}::"${String(e?.id ?? '').replace(/[\\"\0\n\r\t]/g, (c) => escape[c])}"`;
}

/** Opens the what-if view filled in with a recorded request (and its context, when recorded). */
function whatIfFrom(r) {
  const form = byId('whatif-form');
  form.elements.principal.value = cedarRef(r.principal);
  form.elements.action.value = cedarRef(r.action);
  form.elements.resource.value = cedarRef(r.resource);
  const ctx = r.evidence?.context;
  form.elements.context.value = JSON.stringify(ctx && typeof ctx === 'object' && !Array.isArray(ctx) ? ctx : {}, null, 2);
  setText('whatif-error', '');
  fill('whatif-result');
  location.hash = '#/whatif';
}

// Node key pinning. The proof's key comes in the same response as the proof, so a node (or
// whoever answers for it) could sign with any key; only a key the operator pinned earlier, or
// pasted from a trusted source, makes the verdict green. One pin per node id, in this origin's
// localStorage.
const PIN_KEY = 'govmesh.console.pinnedKey.';

function pinnedKey(nodeId) {
  try {
    const v = localStorage.getItem(PIN_KEY + String(nodeId ?? ''));
    return v && /^[0-9a-f]{64}$/.test(v) ? v : '';
  } catch { return ''; }  // storage disabled: nothing pinned
}

function setPin(nodeId, hex) {
  try {
    if (hex) localStorage.setItem(PIN_KEY + String(nodeId ?? ''), hex);
    else localStorage.removeItem(PIN_KEY + String(nodeId ?? ''));
    return true;
  } catch (e) {
    setText('pin-error', `cannot store the pin: ${e.message}`);
    return false;
  }
}

/** Shows the node key the last proof presented and the key pinned for the open record's node. */
function showPin() {
  const key = lastProof?.node_key;
  setText('proof-key-hex', typeof key?.public_key === 'string' ? key.public_key : '— (verify a proof to see it)');
  setText('proof-key-id', typeof key?.key_id === 'string' ? key.key_id : '—');
  setText('proof-key-name', typeof key?.name === 'string' ? key.name : '—');
  const nodeId = openDetail?.node_id;
  setText('pin-node', nodeId ?? '—');
  const pin = openDetail ? pinnedKey(nodeId) : '';
  setText('proof-pin', pin || 'none');
  byId('proof-pin').dataset.state = !pin ? 'none' : key && String(key.public_key).toLowerCase() !== pin ? 'differs' : 'set';
  byId('pin-key').disabled = !openDetail || !key;
  byId('pin-paste').disabled = !openDetail;
  byId('pin-forget').disabled = !pin;
}

function resetProof() {
  proofRun++;
  lastProof = null;
  fill('proof-steps');
  setText('proof-verdict', '');
  byId('proof-verdict').dataset.ok = '';
  setText('proof-note', '');
  setText('proof-note-what', '');
  setText('pin-error', '');
  byId('tamper-proof').disabled = true;
  showPin();
}

function renderVerification(result, what) {
  fill('proof-steps', result.steps.map((s) => el('li', { testid: 'proof-step', 'data-ok': String(s.ok) },
    el('span', { class: 'mark', 'aria-label': s.ok ? 'passed' : 'failed' }, s.ok ? '✓' : '✗'),
    s.name,
    el('pre', {}, s.detail.join('\n')))));
  const verdict = byId('proof-verdict');
  // Green only when the record shown is proven under the key the operator pinned.
  verdict.dataset.ok = !result.ok ? 'false' : result.pinned ? 'true' : 'unpinned';
  verdict.textContent = !result.ok ? '✗ the proof does not verify for this record'
    : result.pinned ? `✓ record #${openSeq} as shown is in the log signed by the node key you pinned`
      : '⚠ verified against the key the node presented (not pinned): pin it, or paste the key you expect';
  setText('proof-note-what', what);
  showPin();
}

/** Verifies `proof` for the open record and renders the result, unless the page moved on. */
async function runVerification(proof, what) {
  const run = ++proofRun;
  const seq = openSeq;
  const detail = openDetail;
  const result = await verifyProof(proof, undefined, { seq, detail, pinnedKey: pinnedKey(detail?.node_id) });
  if (run !== proofRun || seq !== openSeq || detail !== openDetail) return;  // stale: another record or run
  renderVerification(result, what);
}

byId('verify-proof').addEventListener('click', async () => {
  const seq = openSeq;
  resetProof();
  const run = proofRun;
  setText('proof-verdict', 'fetching proof…');
  let proof;
  try {
    proof = await api(`/api/v1/lineage/${seq}/proof`);
  } catch (e) {
    if (run !== proofRun || seq !== openSeq) return;
    setText('proof-verdict', e.message);
    byId('proof-verdict').dataset.ok = 'false';
    return;
  }
  if (run !== proofRun || seq !== openSeq) return;
  lastProof = proof;
  setText('proof-note', proof?.checkpoint?.note ?? '');
  await runVerification(proof, `proof as served by the node (tree size ${proof?.tree_size})`);
  if (lastProof === proof) byId('tamper-proof').disabled = false;
});

byId('tamper-proof').addEventListener('click', async () => {
  if (!lastProof) return;
  const { proof, what } = tamperedCopy(lastProof);
  lastProof = proof;   // tampering again flips another copy, never restores the original
  await runVerification(proof, `tampered: ${what}`);
});

/** Stores `hex` (or '' to forget) as the open node's key and re-checks the proof shown. */
async function pinAndRecheck(hex, what) {
  if (!openDetail || !setPin(openDetail.node_id, hex)) return;
  setText('pin-error', '');
  showPin();
  if (lastProof) await runVerification(lastProof, what);
}

byId('pin-key').addEventListener('click', () => {
  const presented = String(lastProof?.node_key?.public_key ?? '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(presented)) { setText('pin-error', 'the node presented no usable key'); return; }
  pinAndRecheck(presented, 'checked again against the key you pinned');
});

byId('pin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  let hex;
  try {
    hex = toHex(parsePublicKey(byId('pin-input').value));
  } catch (e) {
    setText('pin-error', e.message);
    return;
  }
  byId('pin-input').value = '';
  pinAndRecheck(hex, 'checked again against the key you pasted');
});

byId('pin-forget').addEventListener('click', () => pinAndRecheck('', 'checked again with no key pinned'));

// ---------------------------------------------------------------------------------------------
// What-if: evaluate a request against the active bundle; never recorded.

byId('whatif-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  setText('whatif-error', '');
  fill('whatif-result');
  let context;
  try {
    context = JSON.parse(String(form.get('context') ?? '') || '{}');
  } catch (e) {
    setText('whatif-error', `context: not JSON (${e.message})`);
    return;
  }
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    setText('whatif-error', 'context: must be a JSON object');
    return;
  }
  const body = {
    principal: String(form.get('principal') ?? ''),
    action: String(form.get('action') ?? ''),
    resource: String(form.get('resource') ?? ''),
    context,
  };
  let r;
  try {
    r = await api('/api/v1/whatif', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
  } catch (e) {
    setText('whatif-error', e.message);
    return;
  }
  fill('whatif-result', el('div', {},
    el('p', {},
      el('span', { class: `badge ${r.decision === 'allow' ? 'allow' : 'deny'}`, testid: 'whatif-decision' }, r.decision),
      ' ',
      el('span', { class: 'badge muted', testid: 'whatif-recorded' }, r.recorded === false ? 'not recorded' : 'recorded'),
      ' ',
      el('span', { class: 'muted' }, `${body.principal} ${body.action} ${body.resource}`,
        r.bundle ? ` · bundle revision ${r.bundle.revision}` : '')),
    el('h3', {}, 'Reasons'), listOrNone(r.reasons, 'whatif-reasons'),
    el('h3', {}, 'Policies'),
    Array.isArray(r.policies) && r.policies.length ? r.policies.map(policyBlock) : el('p', { class: 'muted' }, 'none'),
    el('h3', {}, 'Errors'), listOrNone(r.errors, 'whatif-errors')));
});

// ---------------------------------------------------------------------------------------------

setInterval(renderCountdown, 250);
document.addEventListener('visibilitychange', () => { if (!document.hidden && currentView === 'dashboard') pollDashboard(); });
window.addEventListener('hashchange', route);
route();
