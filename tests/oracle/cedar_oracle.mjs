// Differential-test oracle: evaluates Cedar integration tests with the
// reference Cedar engine (npm @cedar-policy/cedar-wasm, pinned in package.json)
// and writes the expected results into the test files.
//
// Usage:
//   node cedar_oracle.mjs DIR          fill in decision/reason/errors (and
//                                      shouldValidate when a schema is given)
//                                      of every test under DIR, in place
//   node cedar_oracle.mjs --check DIR  compare instead of overwriting; prints
//                                      "N passed, M failed" and exits 1 on any
//                                      failure
//   --plain                            (with either) one self-contained
//                                      isAuthorized call per request instead of
//                                      statefulIsAuthorized on preparsed
//                                      policies and schema: slower, same answers
//
// Test files are the integration-test JSON files found under DIR (recursively;
// *.entities.json and files without a "requests" array are skipped). Paths
// inside them are relative to DIR's parent folder (as in Cedar's own corpus,
// where corpus-tests/x.json names "corpus-tests/x.cedar"), or absolute.
// A test without a "schema" field (or with an empty one) is evaluated without
// a schema.
//
// Each request is evaluated by cedar-wasm's authorizer with the policy file's
// text as staticPolicies (so policies are named policy0, policy1, ... in file
// order), the entities JSON, the schema text when present, and the request's
// validateRequest flag (default true, as in Cedar's test harness). A request
// that cedar-wasm rejects outright (entities, context or request do not parse
// or validate) has no expected result: in fill mode it is dropped, a test whose
// files do not load or parse is dropped whole, and both are counted.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// The nodejs build loads its .wasm synchronously, which keeps this script simple.
const cedar = require("@cedar-policy/cedar-wasm/nodejs");

/** Recursively lists the candidate test files under dir, sorted for stable output. */
function listTestFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.name.endsWith(".json") && !ent.name.endsWith(".entities.json")) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

// JSON numbers that JavaScript cannot hold exactly (integers beyond 2^53, and
// any number written with a fraction or exponent, which Cedar rejects but
// JSON.parse would normalise, e.g. 1.0 -> 1) must reach cedar-wasm as written.
// They are read as RawNumber objects and written back verbatim: cedar-wasm's
// glue code serialises its argument with the global JSON.stringify, which is
// therefore wrapped to splice the raw text back in.
const MARK = `\u0001rawnum${Math.random().toString(16).slice(2)}:`;
const MARK_RE = new RegExp(`"${MARK.replace("\u0001", "\\\\u0001")}([^"]*)"`, "g");

/** A JSON number kept as its source text. */
class RawNumber {
  constructor(text) {
    this.text = text;
  }
  toJSON() {
    return MARK + this.text;
  }
}

const plainStringify = JSON.stringify;
JSON.stringify = function (value, replacer, space) {
  const out = plainStringify(value, replacer, space);
  return typeof out === "string" && out.includes("rawnum") ? out.replace(MARK_RE, "$1") : out;
};

/** JSON.parse that keeps inexact numbers as RawNumber (see above). */
function parseJsonExact(text) {
  const TOKEN = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
  const marked = text.replace(TOKEN, (tok) => {
    if (tok.startsWith('"')) return tok;
    if (/^-?\d+$/.test(tok) && Number.isSafeInteger(Number(tok))) return tok;
    return `"${MARK.replace("\u0001", "\\u0001")}${tok}"`;
  });
  return JSON.parse(marked, (_k, v) => (typeof v === "string" && v.startsWith(MARK) ? new RawNumber(v.slice(MARK.length)) : v));
}

function readJson(file) {
  return parseJsonExact(fs.readFileSync(file, "utf8"));
}

/** Loads the files a test names; throws a readable Error when one is unusable. */
function loadTest(test, base) {
  const resolve = (p) => (path.isAbsolute(p) ? p : path.join(base, p));
  const policies = fs.readFileSync(resolve(test.policies), "utf8");
  const entities = readJson(resolve(test.entities));
  let schema;
  if (typeof test.schema === "string" && test.schema !== "") {
    const sp = resolve(test.schema);
    schema = sp.endsWith(".json") ? readJson(sp) : fs.readFileSync(sp, "utf8");
  }
  const parsed = cedar.checkParsePolicySet({ staticPolicies: policies });
  if (parsed.type !== "success") throw new Error(`policies do not parse: ${messages(parsed.errors)}`);
  if (schema !== undefined) {
    const s = cedar.checkParseSchema(schema);
    if (s.type !== "success") throw new Error(`schema does not parse: ${messages(s.errors)}`);
  }
  return { test, policies, entities, schema };
}

function messages(errors) {
  return (errors || []).map((e) => e.message).join("; ");
}

/** True when the validator (strict mode) accepts the policies under the schema. */
function validates(policies, schema) {
  const ans = cedar.validate({
    validationSettings: { mode: "strict" },
    schema,
    policies: { staticPolicies: policies },
  });
  if (ans.type !== "success") throw new Error(`validator failed: ${messages(ans.errors)}`);
  return ans.validationErrors.length === 0;
}

// Ids under which the current test's policies and schema are preparsed (see evaluate).
const POLICY_SET_ID = "oracle-policies";
const SCHEMA_NAME = "oracle-schema";

/**
 * Parses the test's policies and schema once into cedar-wasm's cache, for
 * statefulIsAuthorized; parsing them again for each request (as isAuthorized
 * does) costs more than the evaluation itself.
 */
function preparse(loaded) {
  const p = cedar.preparsePolicySet(POLICY_SET_ID, { staticPolicies: loaded.policies });
  if (p.type !== "success") throw new Error(`policies do not parse: ${messages(p.errors)}`);
  if (loaded.schema !== undefined) {
    const s = cedar.preparseSchema(SCHEMA_NAME, loaded.schema);
    if (s.type !== "success") throw new Error(`schema does not parse: ${messages(s.errors)}`);
  }
}

/**
 * Evaluates one request; returns {decision, reason, errors} or {failure}.
 * `plain` uses isAuthorized with the full texts instead of the preparsed ones
 * (same answers, slower: kept to cross-check the fast path).
 */
function evaluate(loaded, req, plain) {
  const call = {
    principal: req.principal,
    action: req.action,
    resource: req.resource,
    context: req.context ?? {},
    entities: loaded.entities,
  };
  if (loaded.schema !== undefined) call.validateRequest = req.validateRequest ?? true;
  let ans;
  if (plain) {
    call.policies = { staticPolicies: loaded.policies };
    if (loaded.schema !== undefined) call.schema = loaded.schema;
    ans = cedar.isAuthorized(call);
  } else {
    call.preparsedPolicySetId = POLICY_SET_ID;
    if (loaded.schema !== undefined) call.preparsedSchemaName = SCHEMA_NAME;
    ans = cedar.statefulIsAuthorized(call);
  }
  if (ans.type !== "success") return { failure: messages(ans.errors) };
  const d = ans.response.diagnostics;
  return {
    decision: ans.response.decision,
    reason: [...d.reason].sort(byPolicyNumber),
    errors: [...new Set(d.errors.map((e) => e.policyId))].sort(byPolicyNumber),
  };
}

/** Orders policy ids policy2 < policy10, which keeps the written files readable. */
function byPolicyNumber(a, b) {
  const na = /^policy(\d+)$/.exec(a);
  const nb = /^policy(\d+)$/.exec(b);
  if (na && nb) return Number(na[1]) - Number(nb[1]);
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameSet(a, b) {
  const sa = new Set(a);
  return sa.size === new Set(b).size && [...sa].every((x) => b.includes(x));
}

function main(argv) {
  const check = argv.includes("--check");
  const plain = argv.includes("--plain");
  const dirs = argv.filter((a) => a !== "--check" && a !== "--plain");
  if (dirs.length !== 1 || !fs.existsSync(dirs[0]) || !fs.statSync(dirs[0]).isDirectory()) {
    console.error("usage: node cedar_oracle.mjs [--check] [--plain] DIR");
    return 2;
  }
  const dir = path.resolve(dirs[0]);
  const base = path.dirname(dir);
  const started = Date.now();
  const stats = { tests: 0, requests: 0, allow: 0, withErrors: 0, droppedTests: 0, droppedRequests: 0, passed: 0, failed: 0, validationDisagreements: 0 };
  const failureSamples = [];
  const note = (msg) => {
    if (failureSamples.length < 20) failureSamples.push(msg);
  };

  for (const file of listTestFiles(dir)) {
    const rel = path.relative(dir, file);
    let raw;
    try {
      raw = readJson(file);
    } catch {
      continue; // not JSON at all: not a test
    }
    if (!raw || typeof raw !== "object" || !Array.isArray(raw.requests)) continue; // some other JSON file
    let loaded;
    try {
      loaded = loadTest(raw, base);
      if (!plain) preparse(loaded);
    } catch (e) {
      stats.droppedTests++;
      note(`${rel}: ${e.message}`);
      if (check) stats.failed++;
      else fs.rmSync(file); // no expected results can be had: keep runners from seeing it
      continue;
    }
    stats.tests++;
    const { test } = loaded;
    let shouldValidate = false;
    if (loaded.schema !== undefined) {
      try {
        shouldValidate = validates(loaded.policies, loaded.schema);
      } catch (e) {
        note(`${rel}: ${e.message}`);
      }
    }
    if (check && loaded.schema !== undefined && test.shouldValidate !== shouldValidate) {
      // Reported, not failed: Cedar's generated corpus took shouldValidate from an
      // older validator (which rejected e.g. policies with no applicable action,
      // now only warnings), and the check is about authorization results.
      stats.validationDisagreements++;
    }
    const kept = [];
    test.requests.forEach((req, i) => {
      const label = `${rel} request ${i} (${req.description ?? ""})`;
      let r;
      try {
        r = evaluate(loaded, req, plain);
      } catch (e) {
        r = { failure: String(e && e.message ? e.message : e) };
      }
      if (r.failure !== undefined) {
        stats.droppedRequests++;
        note(`${label}: cedar-wasm rejected it: ${r.failure}`);
        if (check) stats.failed++;
        return;
      }
      stats.requests++;
      if (r.decision === "allow") stats.allow++;
      if (r.errors.length) stats.withErrors++;
      if (check) {
        const ok = req.decision === r.decision && sameSet(req.reason ?? [], r.reason) && sameSet(req.errors ?? [], r.errors);
        if (ok) stats.passed++;
        else {
          stats.failed++;
          note(`${label}: expected ${JSON.stringify([req.decision, req.reason, req.errors])}, cedar-wasm gives ${JSON.stringify([r.decision, r.reason, r.errors])}`);
        }
      } else {
        kept.push({ ...req, decision: r.decision, reason: r.reason, errors: r.errors });
      }
    });
    if (!check) {
      if (kept.length === 0) {
        // Nothing left to test: remove the file so runners do not see an empty test.
        stats.droppedTests++;
        fs.rmSync(file);
        continue;
      }
      test.requests = kept;
      if (loaded.schema !== undefined) test.shouldValidate = shouldValidate;
      fs.writeFileSync(file, JSON.stringify(test, null, 2) + "\n");
    }
  }

  const secs = ((Date.now() - started) / 1000).toFixed(1);
  for (const s of failureSamples) console.error(s);
  const pct = (n) => (stats.requests ? ((100 * n) / stats.requests).toFixed(1) : "0.0");
  console.log(
    `cedar-wasm ${cedar.getCedarVersion()}: ${stats.tests} tests, ${stats.requests} requests evaluated in ${secs}s; ` +
      `allow ${pct(stats.allow)}%, with errors ${pct(stats.withErrors)}%; ` +
      `rejected by cedar-wasm: ${stats.droppedTests} tests, ${stats.droppedRequests} requests`
  );
  if (check) {
    if (stats.validationDisagreements)
      console.log(`note: ${stats.validationDisagreements} tests' shouldValidate differs from cedar-wasm's strict validator (not counted below)`);
    console.log(`${stats.passed} passed, ${stats.failed} failed`);
    return stats.failed === 0 ? 0 : 1;
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
