// A tiny transparency log for the console's tests (mock_server.mjs, proof_test.mjs): RFC 9162
// Merkle tree hashes and inclusion paths over leaf hashes, and C2SP checkpoint notes signed with
// an Ed25519 key, all with node's crypto (independent of the page's WebCrypto code it checks).
import crypto from 'node:crypto';

/** SHA-256 of the concatenated buffers. */
export const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();

/** The RFC 9162 leaf hash of record bytes: SHA-256(0x00 ‖ record). */
export const leafHash = (record) => sha256(Buffer.from([0]), record);

const largestPow2Below = (n) => { let k = 1; while (k * 2 < n) k *= 2; return k; };

/** MTH (RFC 9162 2.1.1) of leaves[lo, hi), given their leaf hashes. */
export function treeHash(leaves, lo = 0, hi = leaves.length) {
  if (hi - lo === 1) return leaves[lo];
  const k = largestPow2Below(hi - lo);
  return sha256(Buffer.from([1]), treeHash(leaves, lo, lo + k), treeHash(leaves, lo + k, hi));
}

/** PATH(m, D[lo, hi)) (RFC 9162 2.1.3.1), leaf level first. */
export function inclusionPath(leaves, m, lo = 0, hi = leaves.length) {
  if (hi - lo === 1) return [];
  const k = largestPow2Below(hi - lo);
  return m < k
    ? [...inclusionPath(leaves, m, lo, lo + k), treeHash(leaves, lo + k, hi)]
    : [...inclusionPath(leaves, m - k, lo + k, hi), treeHash(leaves, lo, lo + k)];
}

/** A note signer: {name, rawPub, keyId, sign(body) -> signed note text}. */
export function noteSigner(name) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const rawPub = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const keyId = sha256(Buffer.from(name), Buffer.from([0x0a, 0x01]), rawPub).subarray(0, 4);
  const sign = (body) => {
    const sig = crypto.sign(null, Buffer.from(body), privateKey);
    return `${body}\n\u2014 ${name} ${Buffer.concat([keyId, sig]).toString('base64')}\n`;
  };
  return { name, rawPub, keyId, sign };
}

/**
 * A lineage record in the node's binary format, version 1 (engine/lineage.h), without etcd
 * revision or evidence: r = {seq, timeMs, allow, denyCode, bundleRevision, bundleDigest,
 * requestDigest, contextDigest (32-byte Buffers), signature (64), nodeId, principal, action,
 * resource ({type, id}), reasons, errors}.
 */
export function encodeRecord(r) {
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
  const str = (v) => { const b = Buffer.from(String(v), 'utf8'); const n = Buffer.alloc(4); n.writeUInt32LE(b.length); return Buffer.concat([n, b]); };
  const list = (xs) => { const n = Buffer.alloc(4); n.writeUInt32LE(xs.length); return Buffer.concat([n, ...xs.map(str)]); };
  return Buffer.concat([
    Buffer.from([1, r.allow ? 1 : 0, r.denyCode ?? 0, 0]), u64(r.seq), u64(BigInt(r.timeMs ?? 0) * 1000000n),
    u64(r.bundleRevision), r.bundleDigest, r.requestDigest, r.contextDigest, r.signature, str(r.nodeId ?? ''),
    ...[r.principal, r.action, r.resource].flatMap((e) => [str(e.type), str(e.id)]),
    list(r.reasons ?? []), list(r.errors ?? []),
  ]);
}

/** The C2SP checkpoint body for a tree. */
export const checkpointBody = (origin, size, root) => `${origin}\n${size}\n${root.toString('base64')}\n`;

/** The JSON /api/v1/lineage/{seq}/proof answers for record `seq` (1-based) of `records`. */
export function proofJson(records, seq, signer, origin, leaves = records.map(leafHash)) {
  const root = treeHash(leaves);
  return {
    seq, leaf_index: seq - 1, record_b64: records[seq - 1].toString('base64'),
    leaf_hash: leaves[seq - 1].toString('hex'), tree_size: records.length,
    path: inclusionPath(leaves, seq - 1).map((h) => h.toString('hex')),
    checkpoint: { note: signer.sign(checkpointBody(origin, records.length, root)), origin, size: records.length, root: root.toString('hex') },
    node_key: { name: signer.name, public_key: signer.rawPub.toString('hex'), key_id: signer.keyId.toString('hex') },
  };
}
