// The governance console in a real browser (system Chromium driven by playwright-core from
// console/node_modules): dashboard, live counters and charts, lineage search and paging, a
// record with its policies, the in-browser proof check (amber while the node key is not pinned,
// green once pinned, red after tampering; with the mock also red for a proof of another record,
// for a logged record other than the one shown and for a key other than the pinned one, and a
// late proof never rendered under another record), what-if, hostile strings rendered as text, and no CSP violation or script error throughout.
//
//   node tests/console/browser_test.mjs --govmesh build/bin/govmesh [--out DIR]   # a real node:
//        runs `govmesh demo --console 127.0.0.1:0 --seconds 25 --rate 2000`
//   node tests/console/browser_test.mjs --mock [--out DIR]    # tests/console/mock_server.mjs,
//        with a bearer token so the token prompt is exercised too
// Screenshots of every step go to DIR (default build/console-screenshots). Prints one line per
// check and "N passed, M failed"; exits 0 only when all passed. The server is always stopped
// with SIGTERM and waited for.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt; };
const mock = args.includes('--mock');
const govmesh = opt('--govmesh', path.join(root, 'build/bin/govmesh'));
const outDir = path.resolve(opt('--out', path.join(root, 'build/console-screenshots')));
const chromiumPath = opt('--chromium', '/usr/bin/chromium');
const demoSeconds = opt('--seconds', '25');
const demoRate = opt('--rate', '2000');

let chromium;
try {
  ({ chromium } = await import(path.join(root, 'console/node_modules/playwright-core/index.mjs')));
} catch (e) {
  console.error(`playwright-core is missing (run deploy/install-deps.sh or npm ci in console/): ${e.message}`);
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
for (const f of fs.readdirSync(outDir)) if (f.endsWith('.png')) fs.rmSync(path.join(outDir, f));  // this run's only

// ---- the server under test ---------------------------------------------------------------------
const token = mock ? crypto.randomBytes(12).toString('hex') : '';
const cmd = mock
  ? [process.execPath, [path.join(here, 'mock_server.mjs'), '--listen', '127.0.0.1:0', '--token', token]]
  : [govmesh, ['demo', '--console', '127.0.0.1:0', '--seconds', demoSeconds, '--rate', demoRate]];
const server = spawn(cmd[0], cmd[1], { stdio: ['ignore', 'pipe', 'pipe'] });
const serverLog = [];
const serverExit = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
server.stderr.on('data', (d) => serverLog.push(String(d)));
const consoleUrl = await new Promise((resolve) => {
  const timer = setTimeout(() => resolve(null), 90_000);
  readline.createInterface({ input: server.stdout }).on('line', (line) => {
    serverLog.push(`${line}\n`);
    const m = /console: (http:\/\/\S+)/.exec(line);
    if (m) { clearTimeout(timer); resolve(m[1]); }
  });
  server.on('exit', () => { clearTimeout(timer); resolve(null); });
  server.on('error', (e) => { serverLog.push(String(e)); clearTimeout(timer); resolve(null); });
});

async function stopServer() {
  if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
  const killer = setTimeout(() => server.kill('SIGKILL'), 20_000);
  const result = await serverExit;
  clearTimeout(killer);
  return result;
}

let passed = 0;
let failed = 0;
if (!consoleUrl) {
  console.log(`FAIL - server start: no "console: http://..." line from ${cmd[0]}\n${serverLog.join('').slice(-3000)}`);
  await stopServer();
  console.log('0 passed, 1 failed');
  process.exit(1);
}
console.log(`# ${mock ? 'mock server' : 'govmesh demo'} console at ${consoleUrl}`);

// ---- the browser -------------------------------------------------------------------------------
let browser;
let page;
const problems = { dialogs: [], pageErrors: [], consoleErrors: [], csp: [] };
let shot = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}: ${e instanceof Error ? e.message.split('\n')[0] : e}`);
  }
  if (page) {
    const file = path.join(outDir, `${String(++shot).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
  }
}
function expect(cond, message) { if (!cond) throw new Error(message); }
const text = (sel) => page.locator(sel).first().textContent({ timeout: 10_000 });
const count = (s) => Number(String(s).replace(/[^0-9]/g, ''));

try {
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--headless=new'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(15_000);
  page.on('dialog', (d) => { problems.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => problems.pageErrors.push(e.message));
  page.on('console', (m) => {
    // Error statuses the test provokes on purpose (401 before the token, 400 for bad what-ifs)
    // are logged by Chromium as failed loads; anything else is a real problem.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.consoleErrors.push(m.text());
  });
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });

  await check('page loads', async () => {
    const res = await page.goto(consoleUrl);
    expect(res && res.ok(), `GET / answered ${res && res.status()}`);
    const csp = res.headers()['content-security-policy'] ?? '';
    expect(/script-src 'self'/.test(csp), `no script-src 'self' CSP header (${csp})`);
  });

  if (mock) {
    await check('token prompt on 401', async () => {
      await page.getByTestId('token-dialog').waitFor({ state: 'visible' });
      await page.getByTestId('token-input').fill(token);
      await page.getByTestId('token-ok').click();
      await page.getByTestId('token-dialog').waitFor({ state: 'hidden' });
    });
  }

  await check('dashboard shows node and bundle', async () => {
    await page.waitForFunction(() => document.getElementById('node-id').textContent !== '—');
    const rev = await text('#bundle-revision');
    expect(/^\d+$/.test(rev.trim()), `bundle revision is "${rev}"`);
    expect(/^[0-9a-f]{16,}$/.test((await text('#bundle-digest')).trim()), 'bundle digest is not hex');
    expect((await text('#backend')).trim() !== '—', 'no backend');
    const cd = page.getByTestId('countdown');
    const level = await cd.getAttribute('data-level');
    expect(['ok', 'amber', 'red', 'stale'].includes(level), `countdown level ${level}`);
    expect(/left|STALE|no deadline/.test(await cd.textContent()), `countdown text "${await cd.textContent()}"`);
  });

  await check('decision counter moves under load', async () => {
    // The demo prints its console address before its load starts: wait for the first decisions.
    await page.waitForFunction(() => /[1-9]/.test(document.getElementById('total-decisions').textContent), null, { timeout: 60_000 });
    const first = count(await text('#total-decisions'));
    await page.waitForTimeout(2500);
    const second = count(await text('#total-decisions'));
    expect(second > first, `total decisions went from ${first} to ${second}`);
  });

  await check('charts drawn', async () => {
    await page.locator('#chart-rate canvas').waitFor();
    await page.locator('#chart-codes canvas').waitFor();
  });

  await check('lineage search for denies', async () => {
    await page.getByTestId('nav-lineage').click();
    await page.getByTestId('q-decision').selectOption('deny');
    await page.getByTestId('search').click();
    await page.waitForFunction(() => /record/.test(document.getElementById('lineage-summary').textContent));
    const rows = page.getByTestId('lineage-row');
    expect(await rows.count() > 0, 'no deny rows');
    const decisions = await rows.locator('td:nth-child(6)').allTextContents();
    expect(decisions.every((d) => d === 'deny'), `non-deny rows: ${decisions.join(',')}`);
  });

  await check('lineage paging', async () => {
    const older = page.getByTestId('page-older');
    if (await older.isDisabled()) return; // one page only: nothing to page
    const firstSeqs = (await page.getByTestId('lineage-row').evaluateAll((rs) => rs.map((r) => Number(r.dataset.seq))));
    await older.click();
    await page.waitForFunction((min) => {
      const r = document.querySelector('[data-testid="lineage-row"]');
      return r && Number(r.dataset.seq) < min;
    }, Math.min(...firstSeqs));
    expect(await page.getByTestId('page-newer').isEnabled(), '"Newer" is not enabled on page 2');
  });

  await check('open an allowed record with its policies', async () => {
    await page.getByTestId('q-decision').selectOption('allow');
    await page.getByTestId('search').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="lineage-row"] td:nth-child(6)')?.textContent === 'allow');
    await page.getByTestId('lineage-row').first().click();
    await page.getByTestId('record').waitFor({ state: 'visible' });
    await page.getByTestId('record-decision').waitFor();
    expect((await text('[data-testid="record-decision"]')) === 'allow', 'record decision is not allow');
    const reasons = await page.locator('[data-testid="record-reasons"] li').allTextContents();
    expect(reasons.length > 0, 'an allow with no reasons');
    const policy = await page.getByTestId('policy-text').first().textContent();
    expect(/permit\s*\(/.test(policy), `policy text "${policy.slice(0, 80)}"`);
  });

  const verdictOk = () => page.getByTestId('proof-verdict').getAttribute('data-ok');
  const waitVerdict = (states) => page.waitForFunction((s) => s.includes(document.getElementById('proof-verdict').dataset.ok), states)
    .catch(async () => { throw new Error(`the verdict stayed "${await verdictOk()}" ("${await text('#proof-verdict')}"), wanted ${states}`); });
  const stepResults = () => page.getByTestId('proof-step').evaluateAll((s) => s.map((x) => ({ ok: x.dataset.ok === 'true',
    name: x.firstChild.nextSibling.textContent, detail: x.querySelector('pre').textContent })));
  const failedNames = async () => (await stepResults()).filter((s) => !s.ok).map((s) => s.name);
  const verify = async () => { await page.getByTestId('verify-proof').click(); await waitVerdict(['true', 'false', 'unpinned']); };
  const mockHook = async (pathAndQuery) => {
    const res = await fetch(new URL(pathAndQuery, consoleUrl), { method: 'POST' });
    expect(res.ok, `mock hook ${pathAndQuery} answered ${res.status}`);
    return res.json();
  };
  // Opens record `seq` afresh (its detail fetched again), through the route as a link would.
  const reopen = async (seq) => {
    await page.evaluate(() => { location.hash = '#/lineage'; });
    await page.getByTestId('record').waitFor({ state: 'hidden' });
    await page.evaluate((n) => { location.hash = `#/lineage/${n}`; }, seq);
    await page.waitForFunction((n) => document.getElementById('record-title').textContent === `Record #${n}` &&
      document.querySelector('[data-testid="record-decision"]'), seq);
  };
  const openSeq = () => page.evaluate(() => Number(location.hash.split('/')[2]));

  await check('proof verifies in the browser, key not pinned: amber', async () => {
    await verify();
    const steps = await stepResults();
    expect(steps.length >= 8, `only ${steps.length} steps`);
    expect(steps.every((s) => s.ok), `failed steps: ${steps.filter((s) => !s.ok).map((s) => s.name).join('; ')}`);
    expect(steps.some((s) => s.name === 'proof is for the opened record') && steps.some((s) => s.name === 'the proven record is the one shown'),
      'no seq or record comparison step');
    expect(await verdictOk() === 'unpinned', `verdict is ${await verdictOk()}, not amber`);
    expect(/not pinned/.test(await text('#proof-verdict')), `verdict text "${await text('#proof-verdict')}"`);
    expect(/^[0-9a-f]{64}$/.test(await text('#proof-key-hex')), `node key shown as "${await text('#proof-key-hex')}"`);
    expect(/^[0-9a-f]{8}$/.test(await text('#proof-key-id')), 'no key id shown');
    expect(await text('#proof-pin') === 'none', 'a key is pinned already');
  });

  await check('pin the node key, verify again: green', async () => {
    await page.getByTestId('pin-key').click();
    await waitVerdict(['true']);
    expect(await text('#proof-pin') === await text('#proof-key-hex'), 'the pinned key is not the one presented');
    await verify();
    expect(await verdictOk() === 'true', `verdict is ${await verdictOk()} after verifying with the pin`);
    expect(/pinned/.test(await text('#proof-verdict')), `verdict text "${await text('#proof-verdict')}"`);
  });

  await check('tampered proof turns red', async () => {
    await page.getByTestId('tamper-proof').click();
    await page.waitForFunction(() => document.getElementById('proof-verdict').dataset.ok === 'false');
    const bad = await page.locator('[data-testid="proof-step"][data-ok="false"]').count();
    expect(bad >= 1, 'no failed step after tampering');
  });

  if (mock) {
    await check('a valid proof of another record turns red', async () => {
      await mockHook('/mock/fault?proof=wrong-seq');
      await verify();
      const bad = await failedNames();
      await mockHook('/mock/fault');
      expect(await verdictOk() === 'false', `verdict is ${await verdictOk()}`);
      expect(bad.includes('proof is for the opened record'), `failed steps: ${bad.join('; ')}`);
    });

    await check('a proven record other than the one shown turns red', async () => {
      const seq = await openSeq();
      await mockHook('/mock/fault?detail=differs');
      await reopen(seq);
      await verify();
      const bad = await failedNames();
      const shown = await verdictOk();
      await mockHook('/mock/fault');
      await reopen(seq);
      expect(shown === 'false', `verdict is ${shown}`);
      expect(bad.length === 1 && bad[0] === 'the proven record is the one shown', `failed steps: ${bad.join('; ')}`);
    });

    await check('a late proof is not rendered under another record', async () => {
      const seq = await openSeq();
      await mockHook('/mock/fault?delay_ms=1500');
      await page.getByTestId('verify-proof').click();
      await reopen(seq > 1 ? seq - 1 : seq + 1);
      await page.waitForTimeout(2500);
      await mockHook('/mock/fault');
      expect(await page.getByTestId('proof-step').count() === 0, 'the late proof was rendered');
      expect(await verdictOk() === '', `verdict is "${await verdictOk()}" ("${await text('#proof-verdict')}")`);
    });

    await check('a key other than the pinned one turns red', async () => {
      const rotated = await mockHook('/mock/rotate-key');
      await verify();
      const steps = await stepResults();
      const bad = steps.filter((s) => !s.ok);
      expect(await verdictOk() === 'false', `verdict is ${await verdictOk()}`);
      expect(bad.length === 1 && bad[0].name === 'Ed25519 signature over the note body' && /did not pin/.test(bad[0].detail),
        `failed steps: ${bad.map((s) => `${s.name}: ${s.detail}`).join('; ')}`);
      expect(await page.getByTestId('proof-pin').getAttribute('data-state') === 'differs', 'the pin is not shown as differing');
      // Pasting the new key (as a C2SP verifier key's base64) re-checks and turns green.
      const vkeyB64 = Buffer.concat([Buffer.from([1]), Buffer.from(rotated.public_key, 'hex')]).toString('base64');
      await page.getByTestId('pin-input').fill(vkeyB64);
      await page.getByTestId('pin-paste').click();
      await waitVerdict(['true']);
      expect(await text('#proof-pin') === rotated.public_key, 'the pasted key is not the pinned one');
      await page.getByTestId('pin-input').fill('<img src=x onerror=alert(3)>');
      await page.getByTestId('pin-paste').click();
      await page.waitForFunction(() => document.getElementById('pin-error').textContent !== '');
      expect(await text('#proof-pin') === rotated.public_key, 'a bad paste changed the pin');
    });
  }

  await check('what-if from the record shows a decision, not recorded', async () => {
    await page.getByTestId('record-whatif').click();
    await page.getByTestId('view-whatif').waitFor({ state: 'visible' });
    expect(/::"/.test(await page.getByTestId('w-principal').inputValue()), 'the what-if form was not filled in');
    await page.getByTestId('whatif-run').click();
    await page.getByTestId('whatif-decision').waitFor();
    expect(['allow', 'deny'].includes(await text('[data-testid="whatif-decision"]')), 'no decision');
    expect(await text('[data-testid="whatif-recorded"]') === 'not recorded', 'not marked "not recorded"');
  });

  const hostile = '<img src=x onerror="window.__pwned=1;alert(document.domain)">';
  const noInjection = async () => {
    const r = await page.evaluate(() => ({ imgs: document.querySelectorAll('img').length, pwned: window.__pwned === 1,
      scripts: document.querySelectorAll('script').length }));
    expect(r.imgs === 0 && !r.pwned && r.scripts === 2 && problems.dialogs.length === 0,
      `injected: ${JSON.stringify(r)} dialogs ${problems.dialogs.length}`);
  };

  await check('hostile what-if input is rendered as text', async () => {
    await page.getByTestId('w-principal').fill(hostile);
    await page.getByTestId('whatif-run').click();
    await page.waitForFunction(() => document.getElementById('whatif-error').textContent !== '');
    await noInjection();
  });

  await check('hostile search filter is echoed as text', async () => {
    await page.getByTestId('nav-lineage').click();
    await page.getByTestId('q-decision').selectOption('');
    await page.getByTestId('q-principal').fill(hostile);
    await page.getByTestId('search').click();
    await page.waitForFunction(() => document.getElementById('lineage-summary').textContent.includes('<img src=x'));
    await noInjection();
  });

  if (mock) {
    await check('hostile ids in the data stay text', async () => {
      await page.getByTestId('q-principal').fill('<script>');
      await page.getByTestId('search').click();
      await page.waitForFunction(() => document.querySelector('[data-testid="lineage-row"]')?.textContent.includes('<script>alert(1)</script>'));
      await page.getByTestId('lineage-row').first().click();
      await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="policy-text"]')].some((p) => p.textContent.includes('<b>tags</b>')));
      await noInjection();
    });
  }

  if (mock) {
    await check('bundle countdown turns amber, red, then STALE', async () => {
      await page.getByTestId('nav-dashboard').click();
      for (const [fraction, level, label] of [[0.5, 'ok', /left/], [0.2, 'amber', /left/], [0.05, 'red', /left/], [-0.01, 'stale', /^STALE$/]]) {
        const res = await fetch(new URL(`/mock/deadline?left_fraction=${fraction}`, consoleUrl), { method: 'POST' });
        expect(res.ok, `mock deadline hook answered ${res.status}`);
        await page.waitForFunction((l) => document.getElementById('countdown').dataset.level === l, level)
          .catch(() => { throw new Error(`countdown never reached ${level} at ${fraction} left`); });
        const shown = await text('#countdown');
        expect(label.test(shown), `countdown says "${shown}" at ${fraction} left`);
      }
      expect(await text('#node-state') === 'stale', 'state is not shown as stale');
    });

    await check('admin reload with the token', async () => {
      await page.getByTestId('reload-bundle').click();
      await page.waitForFunction(() => document.getElementById('reload-result').textContent === 'reload requested');
    });
  }

  await check('no CSP violation, script error or dialog', async () => {
    const csp = await page.evaluate(() => window.__csp);
    expect(csp.length === 0, `CSP violations: ${csp.join('; ')}`);
    expect(problems.pageErrors.length === 0, `page errors: ${problems.pageErrors.join('; ')}`);
    expect(problems.consoleErrors.length === 0, `console errors: ${problems.consoleErrors.join('; ')}`);
    expect(problems.dialogs.length === 0, `dialogs: ${problems.dialogs.join('; ')}`);
  });
} catch (e) {
  failed++;
  console.log(`FAIL - browser: ${e instanceof Error ? e.message : e}`);
} finally {
  await browser?.close().catch(() => {});
  const exit = await stopServer();
  if (!mock) {
    // The demo must shut down cleanly on SIGTERM (not need SIGKILL).
    if (exit.signal === 'SIGKILL') { failed++; console.log('FAIL - demo stops on SIGTERM: needed SIGKILL'); }
    else { passed++; console.log(`ok - demo stops on SIGTERM (exit ${exit.code ?? exit.signal})`); }
  }
  if (failed > 0) console.log(`# server output (tail):\n${serverLog.join('').slice(-2000)}`);
  console.log(`${passed} passed, ${failed} failed`);
  console.log(`# screenshots in ${outDir}`);
  process.exitCode = failed === 0 ? 0 : 1;
}
