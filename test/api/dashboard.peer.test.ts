import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { startRuntime } from '../../cli/runtime.js';
import { freePort, peerMissing, tempDir, waitFor } from '../peers/util.js';

const CHROMIUM = '/usr/bin/chromium';

/**
 * The page as a real browser leaves it after running its scripts for `budgetMs` of virtual time.
 * Asynchronous on purpose: the API answering the browser runs in this very process.
 */
async function renderedDom(url: string, profile: string, budgetMs = 8000): Promise<string> {
  const { stdout } = await promisify(execFile)(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, `--virtual-time-budget=${budgetMs}`, '--dump-dom', url,
  ], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/**
 * The NOC screen in a real browser (headless Chromium) against the whole embedded pipeline: the
 * device list, charts and tables fill from the API, a firing alert offers its ack button, and an
 * acknowledgement made with the dashboard's session cookie shows who took it.
 */
const missing = peerMissing(existsSync(CHROMIUM), 'chromium', 'apt-get install -y chromium');

test('dashboard in Chromium: charts, active alerts with an ack button, and the ack shown once made', { timeout: 240_000, skip: missing ?? false }, async () => {
  const dir = tempDir('e2e-dashboard');
  const token = 'dashboard-test-token-0123456789';
  // A rule that fires at once on every device, so the screen has alerts to show.
  const rules = join(dir.path, 'rules.yaml');
  writeFileSync(rules, "groups:\n  - name: t\n    rules:\n      - { alert: CpuSeen, expr: 'hrProcessorLoad >= 0', for: 0s, severity: minor, annotations: { summary: 'cpu of {{ $labels.device }}' } }\n");
  const cfg = loadConfig({
    env: {},
    overrides: {
      dataDir: dir.path,
      api: { port: await freePort(), token },
      demo: { devices: 3, interfaces: 2, intervalMs: 1000, backfillMs: 120_000, incidentEveryMs: 0 },
      processors: { rulesFile: rules },
      log: { level: 'warn' },
    },
  });
  const rt = await startRuntime(['poll', 'process', 'sink', 'serve'], cfg, createLogger('warn'));
  try {
    const base = rt.url!;
    const auth = { authorization: `Bearer ${token}` };
    const firing = await waitFor('a firing alert', async () => {
      const r = await fetch(`${base}/api/v1/alerts?state=firing`, { headers: auth });
      const body = (await r.json()) as { alerts: { fingerprint: string; labels: Record<string, string> }[] };
      return body.alerts[0];
    }, 60_000, 500);
    await waitFor('samples stored', async () => {
      const r = await fetch(`${base}/api/v1/series?metric=ifHCInOctets&device=${firing.labels.device}&from=-10m`, { headers: auth });
      return r.status === 200 && ((await r.json()) as { series: unknown[] }).series.length > 0;
    }, 60_000, 500);

    // the expected band of the first device's traffic (the screen opens on it) in two closed minutes at least
    await waitFor('expected bands rolled up', async () => {
      const r = await fetch(`${base}/api/v1/series?metric=anomaly_lower&device=core-rtr-1&l.of=if_in_bps&from=-1h&step=60000`, { headers: auth });
      return r.status === 200 && ((await r.json()) as { series: { points: unknown[] }[] }).series.some((x) => x.points.length >= 2);
    }, 120_000, 1000);
    const url = `${base}/ui/?token=${token}`;
    let dom = await renderedDom(url, join(dir.path, 'chromium-1'));
    assert.match(dom, /<option>core-rtr-1<\/option>/, 'device list from /api/v1/devices');
    assert.match(dom, /class="uplot/, 'charts drawn by uPlot');
    assert.match(dom, /<h3>Anomaly score \(0-1\)<\/h3>/, 'the anomaly scores have a chart of their own');
    assert.match(dom, /<div class="chart" data-bands="[1-9]\d*"><h3>Inbound/, 'the traffic lines have their expected range drawn behind them');
    assert.match(dom, /id="status">updated /, 'tables refreshed without error');
    // away from the cursor each legend reads its line's latest value: a blank shown as 0 b/s reads as a dead link
    assert.match(dom, /class="u-value">latest</, 'the legend says it shows the latest values');
    assert.match(dom, /class="u-value">[1-9][\d.]* [kMG]?b\/s</, 'the traffic legend reads a rate, not 0 b/s');
    const row = new RegExp(`<button data-fp="${firing.fingerprint}"[^>]*>ack</button>`);
    assert.match(dom, row, 'the firing alert offers an ack button');
    assert.match(dom, /<title>\(\d+\) Noctua<\/title>/, 'the tab counts the firing alerts nobody acknowledged');

    // What the button does: POST with the session cookie the page holds (SameSite=Strict, HttpOnly).
    const r = await fetch(`${base}/api/v1/alerts/${firing.fingerprint}/ack`, {
      method: 'POST', headers: { cookie: `noctua_token=${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ by: 'night-shift', comment: 'INC-42' }),
    });
    assert.ok(r.status === 202 || r.status === 200, `ack accepted (${r.status})`);
    await waitFor('the ack applied', async () => {
      const a = await fetch(`${base}/api/v1/alerts?state=firing`, { headers: auth });
      return ((await a.json()) as { alerts: { fingerprint: string; ack: { by: string } | null }[] }).alerts.find((x) => x.fingerprint === firing.fingerprint)?.ack?.by === 'night-shift';
    }, 30_000, 300);
    dom = await renderedDom(url, join(dir.path, 'chromium-2'));
    assert.match(dom, /<span title="INC-42">by night-shift<\/span>/, 'the screen shows who acknowledged');
    assert.doesNotMatch(dom, row, 'no ack button once acknowledged');
  } finally {
    await rt.stop();
    dir.remove();
  }
});
