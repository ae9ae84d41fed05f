// A stand-in for a govmesh node's console listener (the console_api.md contract), so the page
// can be developed and tested without building the node: fixed but realistic data, counters
// that move, and REAL lineage proofs (an RFC 9162 Merkle tree over the mock records and a C2SP
// checkpoint note signed with a fresh Ed25519 key), so the page's verification code is exercised.
//
//   node tests/console/mock_server.mjs [--listen 127.0.0.1:0] [--token T]
// Prints "console: http://HOST:PORT/" once bound; --token makes every /api request need
// "Authorization: Bearer T" (to exercise the page's token prompt). Stops on SIGTERM/SIGINT.
// Test hooks (not part of the API): POST /mock/deadline?left_fraction=F moves the clock;
// POST /mock/fault?proof=wrong-seq|ok&detail=differs|ok&delay_ms=N serves a valid proof of the
// next record, a detail view whose digests differ from the logged bytes, or a slow proof;
// POST /mock/rotate-key signs checkpoints with a fresh node key from then on.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256, leafHash, noteSigner, proofJson, encodeRecord } from './log_fixture.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const consoleDir = path.resolve(here, '../../console');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt; };
const [host, port] = opt('--listen', '127.0.0.1:0').split(/:(?=\d+$)/);
const token = opt('--token', '');

const HEADERS = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
};
const ASSETS = {
  '/': ['index.html', 'text/html'], '/index.html': ['index.html', 'text/html'],
  '/assets/app.js': ['app.js', 'text/javascript'], '/assets/proof.js': ['proof.js', 'text/javascript'],
  '/assets/dom.js': ['dom.js', 'text/javascript'], '/assets/app.css': ['app.css', 'text/css'],
  '/assets/vendor/uPlot.iife.min.js': ['node_modules/uplot/dist/uPlot.iife.min.js', 'text/javascript'],
  '/assets/vendor/uPlot.min.css': ['node_modules/uplot/dist/uPlot.min.css', 'text/css'],
};

// ---- the mock log ------------------------------------------------------------------------------
const started = Date.now();
const NODE_ID = 'mock-node-1';
const ISSUED_AT = started - 60_000;
const FRESH_UNTIL = started + 10 * 60 * 1000;
let clockOffsetMs = 0;  // moved by the /mock/deadline test hook
const BUNDLE = { revision: 7, digest: sha256(Buffer.from('bundle 7')).toString('hex') };
const POLICIES = {
  'admins-all': { id: 'admins-all', effect: 'permit', text: 'permit (principal in Group::"admins", action, resource);' },
  'viewers-read': { id: 'viewers-read', effect: 'permit', text: 'permit (principal, action == Action::"view", resource)\n  when { resource.public };' },
  'no-<script>-ids': { id: 'no-<script>-ids', effect: 'forbid', text: 'forbid (principal == User::"<script>alert(1)</script>", action, resource);\n// "quotes" & <b>tags</b> stay text' },
};
const CODES = ['NONE', 'BAD_SIGNATURE', 'STALE_BUNDLE', 'REPLAYED_NONCE'];
const USERS = ['alice', 'bob', 'carol', 'mallory', '<script>alert(1)</script>', 'nul\u0000byte', 'quote"d\'id', '<img src=x onerror=alert(2)>'];
const ACTIONS = ['view', 'edit', 'delete', 'deploy'];
const N = 500;
const records = [];
for (let seq = 1; seq <= N; seq++) {
  const user = USERS[seq % USERS.length];
  const deny = seq % 3 === 0 || user.includes('<');
  const code = deny ? CODES[seq % 7 === 0 ? 1 + (seq % 3) : 0] : 'NONE';
  const reasons = deny ? (code === 'NONE' && user.includes('<script') ? ['no-<script>-ids'] : []) :
    (user === 'alice' ? ['admins-all'] : ['viewers-read']);
  records.push({
    seq, time_ms: started - (N - seq) * 1500,
    principal: { type: 'User', id: user }, action: { type: 'Action', id: ACTIONS[seq % 4] },
    resource: { type: 'Photo', id: `photo-${seq % 40}.jpg` },
    decision: deny ? 'deny' : 'allow', deny_code: code, reasons, bundle_revision: BUNDLE.revision,
  });
}
// The digests and signature a record carries (the detail view shows them; the log holds them).
const digestsOf = (seq) => ({
  requestDigest: sha256(Buffer.from(`req ${seq}`)), contextDigest: sha256(Buffer.from(`ctx ${seq}`)),
  signature: Buffer.concat([sha256(Buffer.from(`sig ${seq}`)), sha256(Buffer.from(`sig ${seq}`))]),
});
// The logged bytes, in the node's own record format (engine/lineage.h), so that the page's
// comparison of the proven record with the record shown is exercised.
const recordBytes = records.map((r) => encodeRecord({
  ...r, ...digestsOf(r.seq), timeMs: r.time_ms, allow: r.decision === 'allow', denyCode: CODES.indexOf(r.deny_code),
  bundleRevision: BUNDLE.revision, bundleDigest: Buffer.from(BUNDLE.digest, 'hex'), nodeId: NODE_ID, errors: [],
}));
const leaves = recordBytes.map(leafHash);
let signer = noteSigner('mock-node-1.lineage');
const fault = { proof: 'ok', detail: 'ok', delayMs: 0 };  // moved by the /mock/fault test hook
const ORIGIN = 'govmesh.mock/lineage';

// ---- live counters: a steady mock load of ~2000 decisions a second --------------------------------
const series = [];
const totals = { allow: 0, deny: 0, deny_by_code: { NONE: 0, BAD_SIGNATURE: 0 } };
function tick(t = Date.now()) {
  const second = Math.floor((t - started) / 1000) + 1000;  // kept positive for the history ticks
  const allow = 1500 + Math.round(200 * Math.sin(second / 7));
  const bad = second % 10 < 2 ? 15 : 0;
  const none = 450 + (second % 5) * 10;
  totals.allow += allow; totals.deny += none + bad;
  totals.deny_by_code.NONE += none; totals.deny_by_code.BAD_SIGNATURE += bad;
  series.push({ t_ms: t - (t % 1000), allow, deny: none + bad, deny_by_code: bad ? { NONE: none, BAD_SIGNATURE: bad } : { NONE: none } });
  if (series.length > 600) series.shift();
}
for (let i = 90; i > 0; i--) tick(started - i * 1000);
const timer = setInterval(tick, 1000);

// ---- HTTP ----------------------------------------------------------------------------------------
function send(res, status, obj, extra = {}) {
  res.writeHead(status, { ...HEADERS, 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...extra });
  res.end(JSON.stringify(obj));
}
const err = (res, status, message, extra = {}) => send(res, status, { error: message }, extra);
const render = (e) => `${e.type}::"${e.id}"`;
const ENTITY = /^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*::"((?:[^"\\]|\\.)*)"$/s;

function lineageQuery(res, q) {
  const limit = q.has('limit') ? Number(q.get('limit')) : 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) return err(res, 400, `limit: must be 1..500, got ${q.get('limit')}`);
  const decision = q.get('decision');
  if (decision && decision !== 'allow' && decision !== 'deny') return err(res, 400, `decision: must be allow or deny, got ${decision}`);
  const before = q.has('before_seq') ? Number(q.get('before_seq')) : Infinity;
  const from = q.has('from_ms') ? Number(q.get('from_ms')) : -Infinity;
  const to = q.has('to_ms') ? Number(q.get('to_ms')) : Infinity;
  const out = [];
  let scanned = 0;
  let next = null;
  for (let i = Math.min(N, before - 1); i >= 1; i--) {
    const r = records[i - 1];
    scanned++;
    if (q.get('principal') && !render(r.principal).includes(q.get('principal'))) continue;
    if (q.get('action') && !render(r.action).includes(q.get('action'))) continue;
    if (q.get('resource') && !render(r.resource).includes(q.get('resource'))) continue;
    if (decision && r.decision !== decision) continue;
    if (q.get('code') && r.deny_code !== q.get('code')) continue;
    if (r.time_ms < from || r.time_ms > to) continue;
    if (out.length === limit) { next = out[out.length - 1].seq; break; }
    out.push(r);
  }
  send(res, 200, { size: N, scanned, truncated: false, next_before_seq: next, records: out });
}

function recordDetail(r) {
  // With the "differs" fault the view shows another record's digests than the log holds.
  const d = digestsOf(fault.detail === 'differs' ? r.seq + 1 : r.seq);
  return {
    ...r, node_id: NODE_ID, errors: r.deny_code === 'BAD_SIGNATURE' ? ['request signature does not verify'] : [],
    request_digest: d.requestDigest.toString('hex'), context_digest: d.contextDigest.toString('hex'),
    signature: d.signature.toString('hex'), etcd_revision: null,
    evidence: r.seq % 2 ? { key_id: 'loadgen-1', nonce: sha256(Buffer.from(`n ${r.seq}`)).toString('hex').slice(0, 32),
      payload_digest: null, context: { ip: '10.0.0.7', note: '<b>not bold</b>' } } : null,
    bundle: { revision: BUNDLE.revision, digest: BUNDLE.digest, known: true },
    policies: r.reasons.map((id) => POLICIES[id]).filter(Boolean),
  };
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (p === '/mock/deadline' && req.method === 'POST') {
    // Test hook (not part of the API): move the mock's clock so that this fraction of the
    // bundle's freshness window is left (negative: past the deadline, state "stale").
    const f = Number(url.searchParams.get('left_fraction'));
    if (!Number.isFinite(f)) return err(res, 400, 'left_fraction: not a number');
    clockOffsetMs = Math.round(FRESH_UNTIL - f * (FRESH_UNTIL - ISSUED_AT) - Date.now());
    return send(res, 200, { now_ms: Date.now() + clockOffsetMs });
  }
  if (p === '/mock/fault' && req.method === 'POST') {
    const q = url.searchParams;
    fault.proof = q.get('proof') ?? 'ok';
    fault.detail = q.get('detail') ?? 'ok';
    fault.delayMs = Number(q.get('delay_ms') ?? 0) || 0;
    return send(res, 200, fault);
  }
  if (p === '/mock/rotate-key' && req.method === 'POST') {
    signer = noteSigner(signer.name);
    return send(res, 200, { public_key: signer.rawPub.toString('hex') });
  }
  if (!p.startsWith('/api/')) {
    const a = ASSETS[p];
    if (!a || req.method !== 'GET') { res.writeHead(404, { ...HEADERS, 'Content-Type': 'text/plain' }); return res.end('not found'); }
    res.writeHead(200, { ...HEADERS, 'Content-Type': `${a[1]}; charset=utf-8` });
    return res.end(fs.readFileSync(path.join(consoleDir, a[0])));
  }
  const auth = req.headers.authorization ?? '';
  if (p.startsWith('/api/v1/admin/')) {
    if (!token) return err(res, 403, 'admin actions need a token and none is configured');
    if (auth !== `Bearer ${token}`) return err(res, 403, 'Authorization: admin actions need the console token');
    if (p === '/api/v1/admin/reload' && req.method === 'POST') return send(res, 202, { requested: true, bundle_path: '/etc/govmesh/bundle.signed' });
    return err(res, 404, `no such admin action: ${p}`);
  }
  if (token && auth !== `Bearer ${token}`) {
    return err(res, 401, 'Authorization: a valid bearer token is required', { 'WWW-Authenticate': 'Bearer' });
  }
  if (p === '/api/v1/status') {
    const now = Date.now() + clockOffsetMs;
    const fresh = FRESH_UNTIL;
    const stale = now >= fresh;
    return send(res, 200, {
      node_id: NODE_ID, backend: 'avx2', state: stale ? 'stale' : 'serving',
      state_reason: stale ? 'the bundle is past its freshness deadline' : '', now_ms: now,
      bundle: { ...BUNDLE, issued_at_ms: ISSUED_AT, fresh_until_ms: fresh, seconds_left: Math.max(0, (fresh - now) / 1000),
        source: 'file:/etc/govmesh/bundle.signed', loaded_at_ms: started, policy_count: 3 },
      mesh: null, queue_depth: 3 + (Math.floor(now / 1000) % 5),
      lineage: { enabled: true, size: N, latest_checkpoint_size: N },
      totals,
    });
  }
  if (p === '/api/v1/series') return send(res, 200, { interval_ms: 1000, points: series });
  if (p === '/api/v1/lineage') return lineageQuery(res, url.searchParams);
  let m = /^\/api\/v1\/lineage\/(\d+)(\/proof)?$/.exec(p);
  if (m) {
    const seq = Number(m[1]);
    if (seq < 1 || seq > N) return err(res, 404, `seq ${m[1]} is not in the log (size ${N})`);
    const r = records[seq - 1];
    if (!m[2]) return send(res, 200, recordDetail(r));
    if (fault.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    const proven = fault.proof === 'wrong-seq' ? seq % N + 1 : seq;  // a valid proof, of another record
    return send(res, 200, proofJson(recordBytes, proven, signer, ORIGIN, leaves));
  }
  if (p === '/api/v1/whatif' && req.method === 'POST') {
    let b;
    try { b = JSON.parse(await readBody(req)); } catch { return err(res, 400, 'body: not JSON'); }
    for (const k of ['principal', 'action', 'resource']) {
      if (typeof b[k] !== 'string' || !ENTITY.test(b[k])) return err(res, 400, `${k}: not an entity reference: ${b[k]}`);
    }
    if (b.context === null || typeof b.context !== 'object' || Array.isArray(b.context)) return err(res, 400, 'context: must be a JSON object');
    const allow = b.principal.includes('alice') || b.action === 'Action::"view"';
    const reasons = allow ? [b.principal.includes('alice') ? 'admins-all' : 'viewers-read'] : [];
    return send(res, 200, { decision: allow ? 'allow' : 'deny', reasons, errors: [], policies: reasons.map((id) => POLICIES[id]),
      bundle: BUNDLE, recorded: false });
  }
  return err(res, 404, `no such API path: ${p}`);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => { if (!res.headersSent) err(res, 500, String(e)); });
});
server.listen(Number(port), host, () => {
  const a = server.address();
  console.log(`console: http://${a.address}:${a.port}/`);
});
const stop = () => { clearInterval(timer); server.close(); server.closeAllConnections?.(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
