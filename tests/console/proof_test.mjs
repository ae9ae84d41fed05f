// The console's proof checker (console/proof.js) under node's WebCrypto, without a browser:
// every leaf of trees of 1 to 70 leaves verifies (all RFC 9162 path shapes: left and right
// children, last nodes without a sibling, perfect and ragged trees), and each kind of forgery
// fails at the step that should catch it. Prints "N passed, M failed"; exits 0 only if all pass.
import { verifyProof, tamperedCopy, parseNote } from '../../console/proof.js';
import { leafHash, noteSigner, proofJson, checkpointBody, treeHash } from './log_fixture.mjs';

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++; else { failed++; console.log(`FAIL - ${name}${detail ? `: ${detail}` : ''}`); }
}
const failedSteps = (r) => r.steps.filter((s) => !s.ok).map((s) => s.name);
const records = (n) => Array.from({ length: n }, (_, i) => Buffer.from(`record ${i + 1}: Workload::"bot-${i}"`));
const signer = noteSigner('test.node');
const ORIGIN = 'govmesh.test/lineage';

// Every leaf of every size verifies; a flipped path bit or record bit does not.
for (let n = 1; n <= 70; n++) {
  const recs = records(n);
  const leaves = recs.map(leafHash);
  for (let seq = 1; seq <= n; seq++) {
    const proof = proofJson(recs, seq, signer, ORIGIN, leaves);
    const r = await verifyProof(proof);
    check(`size ${n} seq ${seq} verifies`, r.ok, failedSteps(r).join(', '));
    const t = await verifyProof(tamperedCopy(proof).proof);
    check(`size ${n} seq ${seq} tampered fails`, !t.ok && failedSteps(t).includes('computed root = checkpoint root'));
  }
}

const recs = records(13);
const good = proofJson(recs, 6, signer, ORIGIN);
const variant = async (name, mutate, expectFailed) => {
  const p = structuredClone(good);
  mutate(p);
  const r = await verifyProof(p);
  check(name, !r.ok && failedSteps(r).includes(expectFailed), `failed steps: ${failedSteps(r).join(', ') || 'none'}`);
};

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

// Another signer's line beside ours is ignored (C2SP), and the note parser reads it.
{
  const p = structuredClone(good);
  const witness = noteSigner('witness.example');
  const extra = witness.sign(checkpointBody(ORIGIN, 13, treeHash(recs.map(leafHash)))).split('\n\n')[1];
  p.checkpoint.note = `${p.checkpoint.note}${extra}`;
  const r = await verifyProof(p);
  check('a second signature line is ignored', r.ok, failedSteps(r).join(', '));
  check('the note parser sees both signatures', parseNote(p.checkpoint.note).signatures.length === 2);
}
// A missing WebCrypto is a failure, not a pass.
check('no WebCrypto fails', !(await verifyProof(good, null)).ok);
// An empty path (a tree of one) is tampered through the record.
{
  const one = proofJson(records(1), 1, signer, ORIGIN);
  const { proof, what } = tamperedCopy(one);
  check('empty path: tamper flips the record', /record/.test(what) && proof.record_b64 !== one.record_b64);
}

console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
