// Checks a lineage inclusion proof (GET /api/v1/lineage/{seq}/proof) in the browser, trusting
// nothing the server computed: the leaf hash, the RFC 9162 path walk, the checkpoint root, the
// C2SP signed note, the key id and the Ed25519 signature are all recomputed with WebCrypto. Each
// check is one step so the page can show exactly which one failed.
//
// A proof agreeing with itself is not enough: it must be for the record the operator opened
// (its seq and leaf index), its record bytes must carry the fields the detail view showed (a
// separate request), and its signing key must be one the operator pinned: a node that presents
// a key of its own choosing can sign anything. Without a pin the best verdict is "verified
// against the key the node presented", never plain green.

const enc = new TextEncoder();

/** Lower-case hex of bytes. */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Bytes of a hex string; throws on odd length or a non-hex digit. */
export function fromHex(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) {
    throw new Error(`not hex: ${String(hex).slice(0, 80)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

/** Bytes of standard padded base64; throws when malformed. */
export function fromBase64(text) {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new Error('not standard padded base64');
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

async function sha256(subtle, ...parts) {
  return new Uint8Array(await subtle.digest('SHA-256', concat(...parts)));
}

const equalBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// The fixed head of a lineage record, format version 1 (engine/lineage.h): u8 version, u8 flags,
// u8 denyCode, u8 reserved, u64 seq, i64 timestampNs, u64 bundleRevision, 32 bundleDigest,
// 32 requestDigest, 32 contextDigest, 64 signature; the variable-length rest is not needed here.
const RECORD_HEAD = 4 + 8 + 8 + 8 + 32 + 32 + 32 + 64;

/**
 * The fields of a record's fixed head: {version, allow, seq (BigInt), bundleRevision (BigInt),
 * bundleDigest, requestDigest, contextDigest, signature (hex)}; throws when the bytes are too
 * short or not format version 1.
 */
export function decodeRecordHead(bytes) {
  if (bytes.length < RECORD_HEAD) throw new Error(`the record is ${bytes.length} bytes, shorter than its ${RECORD_HEAD}-byte head`);
  if (bytes[0] !== 1) throw new Error(`record format version ${bytes[0]}, expected 1`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hexAt = (at, n) => toHex(bytes.subarray(at, at + n));
  return {
    version: bytes[0], allow: (bytes[1] & 1) === 1, seq: view.getBigUint64(4, true),
    bundleRevision: view.getBigUint64(20, true), bundleDigest: hexAt(28, 32),
    requestDigest: hexAt(60, 32), contextDigest: hexAt(92, 32), signature: hexAt(124, 64),
  };
}

/**
 * The 32 raw bytes of an Ed25519 public key as an operator may paste it: 64 hex digits, a C2SP
 * verifier key "name+hex8+base64(0x01 ‖ key)" (or just its base64 part), the base64 of the raw
 * key, or a PEM "PUBLIC KEY" (SubjectPublicKeyInfo, as `govmesh keygen` writes it) or its base64.
 * Throws naming what it could not read.
 */
export function parsePublicKey(text) {
  const t = String(text ?? '').trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return fromHex(t);
  const pem = /^-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----$/.exec(t);
  const vkey = /^[^+\s]+\+([0-9a-fA-F]{8})\+(\S+)$/.exec(t);
  const b64 = pem ? pem[1].replace(/\s+/g, '') : vkey ? vkey[2] : t;
  let bytes;
  try { bytes = fromBase64(b64); } catch { throw new Error('not a key: expected 64 hex digits, a C2SP verifier key, base64 or a PEM public key'); }
  const spki = fromHex('302a300506032b6570032100');  // SubjectPublicKeyInfo prefix of an Ed25519 key
  if (bytes.length === 32 && !vkey && !pem) return bytes;
  if (bytes.length === 33 && bytes[0] === 0x01 && !pem) return bytes.slice(1);
  if (bytes.length === 44 && equalBytes(bytes.slice(0, 12), spki) && !vkey) return bytes.slice(12);
  throw new Error(`not an Ed25519 public key (${bytes.length} bytes after decoding)`);
}

/**
 * Walks an RFC 9162 §2.1.3.2 inclusion path from `leaf` (leaf index `index` of a tree of `size`
 * leaves) and returns {root, levels} (levels: one line per hash taken, for display); throws when
 * the path has the wrong length for that index and size.
 */
export async function rootFromPath(subtle, leaf, index, size, path) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn > sn) throw new Error(`leaf index ${index} is outside a tree of size ${size}`);
  let r = leaf;
  const levels = [];
  const one = new Uint8Array([1]);
  for (const [i, p] of path.entries()) {
    if (sn === 0n) throw new Error(`the path is too long (${path.length} hashes)`);
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(subtle, one, p, r);
      levels.push(`${i}: H(0x01 ‖ path[${i}] ‖ r) = ${toHex(r)}`);
      if ((fn & 1n) === 0n) {
        // fn is the last node of its level with no right sibling: climb until it is a right child.
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = await sha256(subtle, one, r, p);
      levels.push(`${i}: H(0x01 ‖ r ‖ path[${i}]) = ${toHex(r)}`);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error(`the path is too short (${path.length} hashes)`);
  return { root: r, levels };
}

/**
 * Splits a C2SP signed note into {body, origin, size, rootB64, signatures: [{name, bytes}]};
 * throws naming what is malformed. The body is everything up to the blank line, including its
 * final newline, which is what the signatures cover.
 */
export function parseNote(note) {
  if (typeof note !== 'string') throw new Error('the note is not text');
  const cut = note.indexOf('\n\n');
  if (cut < 0) throw new Error('the note has no blank line between body and signatures');
  const body = note.slice(0, cut + 1);
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3) throw new Error('the checkpoint body has fewer than 3 lines');
  const [origin, sizeText, rootB64] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new Error(`bad tree size line: ${sizeText}`);
  const signatures = [];
  for (const line of note.slice(cut + 2).split('\n')) {
    if (line === '') continue;
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Error('a signature line is not "— <name> <base64>"');
    signatures.push({ name: m[1], bytes: fromBase64(m[2]) });
  }
  if (signatures.length === 0) throw new Error('the note has no signature line');
  return { body, origin, size: BigInt(sizeText), rootB64, signatures };
}

/**
 * Verifies `proof` (the JSON of /api/v1/lineage/{seq}/proof) for the record the page opened.
 * `expected`: {seq: the opened seq, detail: the JSON of /api/v1/lineage/{seq} the page shows,
 * pinnedKey: the pinned node key as 64 hex digits, or absent}. Returns {ok, pinned, steps}, each
 * step {name, ok, detail: [lines]}: ok when every step passed, pinned when moreover the note was
 * signed by the pinned key (without a pin, ok only means "signed by the key the node presented").
 * A step whose input failed is reported as failed, never skipped silently. Never throws.
 */
export async function verifyProof(proof, subtle = globalThis.crypto?.subtle, expected = {}) {
  const steps = [];
  const step = (name, ok, ...detail) => { steps.push({ name, ok: Boolean(ok), detail }); return ok; };
  const attempt = async (name, fn) => {
    try { return await fn(); } catch (e) { step(name, false, e instanceof Error ? e.message : String(e)); return undefined; }
  };
  if (!subtle) {
    step('WebCrypto available', false, 'crypto.subtle is missing: open the console over https or on loopback');
    return { ok: false, pinned: false, steps };
  }
  proof = proof && typeof proof === 'object' ? proof : {};

  // 0. The proof is for the record that is open, at the leaf that record's seq names.
  await attempt('proof is for the opened record', async () => {
    if (!Number.isSafeInteger(expected.seq) || expected.seq < 1) throw new Error('no opened record to compare with');
    step('proof is for the opened record', proof.seq === expected.seq && proof.leaf_index === expected.seq - 1,
      `opened seq ${expected.seq}`, `proof seq ${proof.seq}, leaf index ${proof.leaf_index} (must be ${expected.seq - 1})`);
  });

  // 1. The leaf: SHA-256(0x00 ‖ record bytes), compared with the hash the server states.
  const record = await attempt('leaf hash = SHA-256(0x00 ‖ record)', async () => {
    const bytes = fromBase64(proof.record_b64);
    const h = await sha256(subtle, new Uint8Array([0]), bytes);
    const stated = String(proof.leaf_hash ?? '').toLowerCase();
    step('leaf hash = SHA-256(0x00 ‖ record)', toHex(h) === stated,
      `record: ${bytes.length} bytes`, `computed ${toHex(h)}`, `stated   ${stated}`);
    return { bytes, leaf: h };
  });
  const leaf = record?.leaf;

  // 1b. The proven bytes are the record the detail view shows (fetched by another request).
  await attempt('the proven record is the one shown', async () => {
    if (!record) throw new Error('no record bytes to decode');
    const d = expected.detail;
    if (!d || typeof d !== 'object') throw new Error('the record shown did not load: nothing to compare with');
    const head = decodeRecordHead(record.bytes);
    const lower = (v) => String(v ?? '').toLowerCase();
    const fields = [
      ['seq', String(head.seq), String(d.seq)],
      ['seq (opened)', String(head.seq), String(expected.seq)],
      ['decision', head.allow ? 'allow' : 'deny', String(d.decision)],
      ['bundle revision', String(head.bundleRevision), String(d.bundle?.revision)],
      ['bundle digest', head.bundleDigest, lower(d.bundle?.digest)],
      ['request digest', head.requestDigest, lower(d.request_digest)],
      ['context digest', head.contextDigest, lower(d.context_digest)],
      ['signature', head.signature, lower(d.signature)],
    ];
    const bad = fields.filter(([, a, b]) => a !== b);
    step('the proven record is the one shown', bad.length === 0,
      ...fields.map(([n, a, b]) => `${a === b ? '=' : '≠'} ${n}: proven ${a}${a === b ? '' : `, shown ${b}`}`));
  });

  // 2. The path walk up to a root.
  const root = await attempt('inclusion path → root', async () => {
    if (!leaf) throw new Error('no leaf hash to start from');
    if (proof.leaf_index !== proof.seq - 1) throw new Error(`leaf index ${proof.leaf_index} is not seq − 1 (${proof.seq - 1})`);
    if (!Array.isArray(proof.path)) throw new Error('the path is not a list');
    const path = proof.path.map(fromHex);
    if (path.some((p) => p.length !== 32)) throw new Error('a path hash is not 32 bytes');
    const { root: r, levels } = await rootFromPath(subtle, leaf, proof.leaf_index, proof.tree_size, path);
    step('inclusion path → root', true, `leaf ${proof.leaf_index} of ${proof.tree_size}, ${path.length} hashes`, ...levels);
    return r;
  });

  // 3. That root against the checkpoint's.
  const cp = proof.checkpoint ?? {};
  const cpRoot = String(cp.root ?? '').toLowerCase();
  step('computed root = checkpoint root', root !== undefined && toHex(root) === cpRoot,
    `computed   ${root ? toHex(root) : '(none)'}`, `checkpoint ${cpRoot}`);

  // 4. The note: its body must state the same origin, size and root.
  const note = await attempt('checkpoint note parsed', async () => {
    const n = parseNote(cp.note);
    const noteRoot = toHex(fromBase64(n.rootB64));
    const sizeOk = n.size === BigInt(cp.size) && n.size === BigInt(proof.tree_size);
    step('checkpoint note parsed', n.origin === cp.origin && sizeOk && noteRoot === cpRoot,
      `origin ${n.origin}`, `size ${n.size} (proof tree size ${proof.tree_size})`, `root ${noteRoot}`);
    return n;
  });

  // 5. The key id: derived from the key's name and bytes, and carried by a signature line.
  const key = proof.node_key ?? {};
  const sig = await attempt('key id', async () => {
    if (!note) throw new Error('no parsed note');
    const pub = fromHex(key.public_key);
    if (pub.length !== 32) throw new Error('the public key is not 32 bytes');
    const id = (await sha256(subtle, enc.encode(key.name), new Uint8Array([0x0a, 0x01]), pub)).slice(0, 4);
    const line = note.signatures.find((s) => s.name === key.name && s.bytes.length === 68 &&
      equalBytes(s.bytes.slice(0, 4), id));
    step('key id', toHex(id) === String(key.key_id).toLowerCase() && line !== undefined,
      `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4] = ${toHex(id)}`, `stated ${key.key_id}`,
      line ? `signature line by ${line.name}` : `no signature line by ${key.name} with that key id`);
    return line ? { pub, signature: line.bytes.slice(4) } : undefined;
  });

  // 6. The Ed25519 signature over the body, by the pinned key when there is one.
  const pin = expected.pinnedKey ? String(expected.pinnedKey).toLowerCase() : '';
  let pinned = false;
  await attempt('Ed25519 signature over the note body', async () => {
    if (!sig) throw new Error('no signature to check');
    const k = await subtle.importKey('raw', sig.pub, { name: 'Ed25519' }, false, ['verify']);
    const valid = await subtle.verify({ name: 'Ed25519' }, k, sig.signature, enc.encode(note.body));
    const presented = toHex(sig.pub);
    const keyOk = pin === '' || pin === presented;
    pinned = valid && pin !== '' && keyOk;
    step('Ed25519 signature over the note body', valid && keyOk, valid ? 'valid' : 'INVALID',
      `by the key the node presented: ${presented}`,
      pin === '' ? 'no key pinned for this node: the node chose the key it was checked against'
        : keyOk ? 'which is the key you pinned' : `signed by a key you did not pin (pinned: ${pin})`);
  });

  const ok = steps.length > 0 && steps.every((s) => s.ok);
  return { ok, pinned: ok && pinned, steps };
}

/**
 * A copy of `proof` with one bit flipped: in the first path hash, or in the record when the
 * path is empty. For the Tamper button, which must turn the verification red.
 */
export function tamperedCopy(proof) {
  const copy = structuredClone(proof);
  if (Array.isArray(copy.path) && copy.path.length > 0) {
    const bytes = fromHex(copy.path[0]);
    bytes[0] ^= 0x01;
    copy.path[0] = toHex(bytes);
    return { proof: copy, what: 'flipped the lowest bit of path[0]' };
  }
  let record = fromBase64(copy.record_b64);
  if (record.length === 0) record = new Uint8Array(1);
  record[record.length - 1] ^= 0x01;
  copy.record_b64 = btoa(String.fromCharCode(...record));
  return { proof: copy, what: 'flipped the lowest bit of the record\'s last byte' };
}
