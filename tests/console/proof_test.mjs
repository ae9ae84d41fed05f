// The console's proof checker (console/proof.js) under node's WebCrypto, without a browser:
// every leaf of trees of 1 to 70 leaves verifies (all RFC 9162 path shapes: left and right
// children, last nodes without a sibling, perfect and ragged trees), and each kind of forgery
// fails at the step that should catch it: a proof for another seq, record bytes other than the
// record shown, a key other than the pinned one. Prints "N passed, M failed"; exits 0 only if all pass.
import { verifyProof, tamperedCopy, parseNote, parsePublicKey, decodeRecordHead, toHex } from '../../console/proof.js';
import { leafHash, noteSigner, proofJson, checkpointBody, treeHash, encodeRecord, sha256 } from './log_fixture.mjs';

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++; else { failed++; console.log(`FAIL - ${name}${detail ? `: ${detail}` : ''}`); }
}
const failedSteps = (r) => r.steps.filter((s) => !s.ok).map((s) => s.name);
const h = (text) => sha256(Buffer.from(text));
// Record seq's fields, its bytes in the node's format, and the detail view the page would show.
const fieldsOf = (seq) => ({
  seq, timeMs: 1_700_000_000_000 + seq, allow: seq % 2 === 1, denyCode: seq % 2, bundleRevision: 3,
  bundleDigest: h('bundle 3'), requestDigest: h(`req ${seq}`), contextDigest: h(`ctx ${seq}`),
  signature: Buffer.concat([h(`sig ${seq}`), h(`sig' ${seq}`)]), nodeId: 'test-node',
  principal: { type: 'Workload', id: `bot-${seq}` }, action: { type: 'Action', id: 'view' },
  resource: { type: 'Photo', id: 'x.jpg' }, reasons: ['policy0'], errors: [],
});
const detailOf = (f) => ({
  seq: f.seq, decision: f.allow ? 'allow' : 'deny', bundle: { revision: f.bundleRevision, digest: f.bundleDigest.toString('hex') },
  request_digest: f.requestDigest.toString('hex'), context_digest: f.contextDigest.toString('hex'), signature: f.signature.toString('hex'),
});
const records = (n) => Array.from({ length: n }, (_, i) => encodeRecord(fieldsOf(i + 1)));
const opened = (seq, pinnedKey) => ({ seq, detail: detailOf(fieldsOf(seq)), pinnedKey });
const signer = noteSigner('test.node');
const signerHex = signer.rawPub.toString('hex');
const ORIGIN = 'govmesh.test/lineage';

// Every leaf of every size verifies; a flipped path bit or record bit does not.
for (let n = 1; n <= 70; n++) {
  const recs = records(n);
  const leaves = recs.map(leafHash);
  for (let seq = 1; seq <= n; seq++) {
    const proof = proofJson(recs, seq, signer, ORIGIN, leaves);
    const r = await verifyProof(proof, undefined, opened(seq));
    check(`size ${n} seq ${seq} verifies, not pinned`, r.ok && !r.pinned, failedSteps(r).join(', '));
    const t = await verifyProof(tamperedCopy(proof).proof, undefined, opened(seq, signerHex));
    check(`size ${n} seq ${seq} tampered fails`, !t.ok && failedSteps(t).includes('computed root = checkpoint root'));
  }
}

const recs = records(13);
const good = proofJson(recs, 6, signer, ORIGIN);
const variant = async (name, mutate, expectFailed, expected = opened(6, signerHex)) => {
  const p = structuredClone(good);
  mutate(p);
  const r = await verifyProof(p, undefined, expected);
  check(name, !r.ok && !r.pinned && failedSteps(r).includes(expectFailed), `failed steps: ${failedSteps(r).join(', ') || 'none'}`);
  return r;
};
{
  const r = await verifyProof(good, undefined, opened(6, signerHex));
  check('pinned key: verifies and is pinned', r.ok && r.pinned, failedSteps(r).join(', '));
  const u = await verifyProof(good, undefined, opened(6, signerHex.toUpperCase()));
  check('pinned key in upper-case hex', u.ok && u.pinned, failedSteps(u).join(', '));
}

await variant('stated leaf hash differs', (p) => { p.leaf_hash = '00'.repeat(32); }, 'leaf hash = SHA-256(0x00 ‖ record)');
await variant('path too short', (p) => { p.path.pop(); }, 'inclusion path → root');
await variant('path too long', (p) => { p.path.push('11'.repeat(32)); }, 'inclusion path → root');
await variant('leaf index is not seq − 1', (p) => { p.leaf_index = 6; }, 'inclusion path → root');
await variant('leaf index outside the tree', (p) => { p.seq = 20; p.leaf_index = 19; }, 'inclusion path → root');
await variant('path hash not hex', (p) => { p.path[0] = 'zz'.repeat(32); }, 'inclusion path → root');
await variant('record not base64', (p) => { p.record_b64 = 'not base64!'; }, 'leaf hash = SHA-256(0x00 ‖ record)');
await variant('JSON root differs from the note', (p) => { p.checkpoint.root = 'ab'.repeat(32); }, 'checkpoint note parsed');
await variant('note for another size', (p) => { p.checkpoint.size = 12; }, 'checkpoint note parsed');
await variant('note for another origin', (p) => { p.checkpoint.origin = 'other/log'; }, 'checkpoint note parsed');
await variant('note body altered after signing', (p) => {
  p.checkpoint.note = p.checkpoint.note.replace(ORIGIN, `${ORIGIN}x`);
  p.checkpoint.origin = `${ORIGIN}x`;
}, 'Ed25519 signature over the note body');
await variant('note without signatures', (p) => { p.checkpoint.note = p.checkpoint.note.split('\n\n')[0] + '\n\n'; }, 'checkpoint note parsed');
await variant('stated key id wrong', (p) => { p.node_key.key_id = '00000000'; }, 'key id');
await variant('another key name', (p) => { p.node_key.name = 'other.node'; }, 'key id');
const other = noteSigner('test.node');
await variant('signed by another key of the same name', (p) => {
  p.checkpoint.note = other.sign(checkpointBody(ORIGIN, 13, treeHash(recs.map(leafHash))));
}, 'key id');
await variant('signature by the right key id but wrong bytes', (p) => {
  const [body, sigLine] = p.checkpoint.note.split('\n\n');
  const [dash, name, b64] = sigLine.trim().split(' ');
  const bytes = Buffer.from(b64, 'base64');
  bytes[10] ^= 0x80;
  p.checkpoint.note = `${body}\n\n${dash} ${name} ${bytes.toString('base64')}\n`;
}, 'Ed25519 signature over the note body');

// The proof must be for the opened record, and prove the bytes of the record shown.
await variant('a valid proof for another seq', (p) => Object.assign(p, proofJson(recs, 7, signer, ORIGIN)), 'proof is for the opened record');
await variant('a valid proof for another seq: its record differs', (p) => Object.assign(p, proofJson(recs, 7, signer, ORIGIN)), 'the proven record is the one shown');
await variant('seq says opened, leaf index another', (p) => { p.leaf_index = 4; }, 'proof is for the opened record');
await variant('no opened seq', () => {}, 'proof is for the opened record', { detail: detailOf(fieldsOf(6)), pinnedKey: signerHex });
await variant('no record shown', () => {}, 'the proven record is the one shown', { seq: 6, pinnedKey: signerHex });
for (const [field, change] of [
  ['seq', (d) => { d.seq = 5; }], ['decision', (d) => { d.decision = 'allow'; }],
  ['bundle revision', (d) => { d.bundle.revision = 4; }], ['bundle digest', (d) => { d.bundle.digest = h('x').toString('hex'); }],
  ['request digest', (d) => { d.request_digest = h('x').toString('hex'); }], ['context digest', (d) => { d.context_digest = h('x').toString('hex'); }],
  ['signature', (d) => { d.signature = '00'.repeat(64); }],
]) {
  const e = opened(6, signerHex);
  change(e.detail);
  const r = await variant(`shown ${field} differs from the proven record`, () => {}, 'the proven record is the one shown', e);
  const s = r.steps.find((x) => x.name === 'the proven record is the one shown');
  check(`shown ${field}: the mismatch is named`, s?.detail.some((l) => l.startsWith(`≠ ${field}:`)), s?.detail.join(' | '));
}
{
  // The log proves a record whose bytes the page cannot read: fails, never passes unread.
  const odd = [...recs];
  odd[5] = Buffer.from('record 6 in some other format');
  const e = opened(6, signerHex);
  const r = await verifyProof(proofJson(odd, 6, signer, ORIGIN), undefined, e);
  check('undecodable record bytes fail', !r.ok && failedSteps(r).join() === 'the proven record is the one shown', failedSteps(r).join(', '));
  const head = decodeRecordHead(recs[5]);
  check('record head decodes', head.seq === 6n && head.requestDigest === h('req 6').toString('hex') && !head.allow);
}

// Key pinning: a key other than the pinned one is red however valid its signature.
{
  const other = noteSigner('test.node');
  const r = await variant('signed by a key you did not pin', (p) => Object.assign(p, proofJson(recs, 6, other, ORIGIN)),
    'Ed25519 signature over the note body');
  const s = r.steps.find((x) => x.name === 'Ed25519 signature over the note body');
  check('the unpinned key is named', s?.detail.some((l) => /did not pin/.test(l)), s?.detail.join(' | '));
  check('only the signature step fails', failedSteps(r).length === 1, failedSteps(r).join(', '));
}
{
  const raw = signer.rawPub;
  const vkey = `test.node+${signer.keyId.toString('hex')}+${Buffer.concat([Buffer.from([1]), raw]).toString('base64')}`;
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]).toString('base64');
  const pem = `-----BEGIN PUBLIC KEY-----\n${spki}\n-----END PUBLIC KEY-----\n`;
  for (const [form, text] of [['hex', ` ${signerHex} `], ['C2SP vkey', vkey], ['vkey base64', vkey.split('+').slice(2).join('+')],
    ['raw base64', raw.toString('base64')], ['PEM', pem], ['PEM base64', spki]]) {
    let got = '';
    try { got = toHex(parsePublicKey(text)); } catch (e) { got = e.message; }
    check(`parsePublicKey reads ${form}`, got === signerHex, got);
  }
  for (const bad of ['', 'zz', '00'.repeat(31), Buffer.alloc(31).toString('base64'), `x+00000000+${raw.toString('base64')}`]) {
    let threw = false;
    try { parsePublicKey(bad); } catch { threw = true; }
    check(`parsePublicKey refuses "${bad.slice(0, 20)}"`, threw);
  }
}

// Another signer's line beside ours is ignored (C2SP), and the note parser reads it.
{
  const p = structuredClone(good);
  const witness = noteSigner('witness.example');
  const extra = witness.sign(checkpointBody(ORIGIN, 13, treeHash(recs.map(leafHash)))).split('\n\n')[1];
  p.checkpoint.note = `${p.checkpoint.note}${extra}`;
  const r = await verifyProof(p, undefined, opened(6, signerHex));
  check('a second signature line is ignored', r.ok, failedSteps(r).join(', '));
  check('the note parser sees both signatures', parseNote(p.checkpoint.note).signatures.length === 2);
}
// A missing WebCrypto is a failure, not a pass.
check('no WebCrypto fails', !(await verifyProof(good, null, opened(6, signerHex))).ok);
check('no expectations fail', !(await verifyProof(good)).ok);
// An empty path (a tree of one) is tampered through the record.
{
  const one = proofJson(records(1), 1, signer, ORIGIN);
  const { proof, what } = tamperedCopy(one);
  check('empty path: tamper flips the record', /record/.test(what) && proof.record_b64 !== one.record_b64);
}

console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
