// Checks a lineage inclusion proof (GET /api/v1/lineage/{seq}/proof) in the browser, trusting
// nothing the server computed: the leaf hash, the RFC 9162 path walk, the checkpoint root, the
// C2SP signed note, the key id and the Ed25519 signature are all recomputed with WebCrypto. Each
// check is one step so the page can show exactly which one failed.

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
 * Verifies `proof` (the JSON of /api/v1/lineage/{seq}/proof). Returns {ok, steps}, each step
 * {name, ok, detail: [lines]}; a step whose input failed is reported as failed, never skipped
 * silently. Never throws.
 */
export async function verifyProof(proof, subtle = globalThis.crypto?.subtle) {
  const steps = [];
  const step = (name, ok, ...detail) => { steps.push({ name, ok: Boolean(ok), detail }); return ok; };
  const attempt = async (name, fn) => {
    try { return await fn(); } catch (e) { step(name, false, e instanceof Error ? e.message : String(e)); return undefined; }
  };
  if (!subtle) {
    step('WebCrypto available', false, 'crypto.subtle is missing: open the console over https or on loopback');
    return { ok: false, steps };
  }

  // 1. The leaf: SHA-256(0x00 ‖ record bytes), compared with the hash the server states.
  const leaf = await attempt('leaf hash = SHA-256(0x00 ‖ record)', async () => {
    const record = fromBase64(proof.record_b64);
    const h = await sha256(subtle, new Uint8Array([0]), record);
    const stated = String(proof.leaf_hash ?? '').toLowerCase();
    step('leaf hash = SHA-256(0x00 ‖ record)', toHex(h) === stated,
      `record: ${record.length} bytes`, `computed ${toHex(h)}`, `stated   ${stated}`);
    return h;
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

  // 6. The Ed25519 signature over the body.
  await attempt('Ed25519 signature over the note body', async () => {
    if (!sig) throw new Error('no signature to check');
    const k = await subtle.importKey('raw', sig.pub, { name: 'Ed25519' }, false, ['verify']);
    const ok = await subtle.verify({ name: 'Ed25519' }, k, sig.signature, enc.encode(note.body));
    step('Ed25519 signature over the note body', ok, ok ? 'valid' : 'INVALID');
  });

  return { ok: steps.length > 0 && steps.every((s) => s.ok), steps };
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
