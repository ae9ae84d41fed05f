// Times the real Cedar engine (cedar-wasm, pinned in package-lock.json) on a workload written by
// `govmesh bench tables`: DIR/policies.cedar, DIR/entities.json, DIR/requests.jsonl.
// statefulIsAuthorized on a preparsed policy set, one request at a time, each carrying only
// the entities it touches (principal, action, resource and their ancestors), as
// ../shared/design/WORKLOADS.md measures it. Prints one JSON object.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const cedar = require("@cedar-policy/cedar-wasm/nodejs");

const [dir, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? "2");
const policies = fs.readFileSync(path.join(dir, "policies.cedar"), "utf8");
const entities = JSON.parse(fs.readFileSync(path.join(dir, "entities.json"), "utf8"));
const requests = fs.readFileSync(path.join(dir, "requests.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));

const key = (u) => `${u.type}\u0000${u.id}`;
const byUid = new Map(entities.map((e) => [key(e.uid.__entity ?? e.uid), e]));
function slice(req) {
  const out = new Map();
  const stack = [req.principal, req.action, req.resource];
  while (stack.length) {
    const u = stack.pop();
    const k = key(u);
    if (out.has(k) || !byUid.has(k)) continue;
    const e = byUid.get(k);
    out.set(k, e);
    for (const p of e.parents ?? []) stack.push(p.__entity ?? p);
  }
  return [...out.values()];
}
const calls = requests.map((r) => ({
  principal: r.principal, action: r.action, resource: r.resource, context: r.context ?? {},
  entities: slice(r), preparsedPolicySetId: "bench",
}));
const p = cedar.preparsePolicySet("bench", { staticPolicies: policies });
if (p.type !== "success") { console.error("policies do not parse"); process.exit(1); }

let done = 0, allowed = 0;
const start = process.hrtime.bigint();
const budget = BigInt(Math.round(seconds * 1e9));
while (process.hrtime.bigint() - start < budget || done === 0) {
  const ans = cedar.statefulIsAuthorized(calls[done % calls.length]);
  if (ans.type !== "success") { console.error(JSON.stringify(ans.errors)); process.exit(1); }
  if (ans.response.decision === "allow") allowed++;
  done++;
}
const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ decisions: done, seconds: elapsed, allowed, version: "4.13.0" }));
