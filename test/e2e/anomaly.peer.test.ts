import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { startRuntime } from '../../cli/runtime.js';
import { freePort, tempDir, waitFor } from '../peers/util.js';

/**
 * The whole embedded pipeline (demo -> bus -> rate -> anomaly detector -> events -> ClickHouse -> API):
 * an incident injected through the API yields an `anomaly` event whose event time is within 30 s of
 * the incident's first sample, and the shipped rules' AnomalyDetected alert for the device. The demo
 * backfills enough history for the detector's warm-up.
 */
test('an incident injected into the demo network produces an anomaly event within 30 s of its first sample', { timeout: 300_000 }, async () => {
  const dir = tempDir('e2e-anomaly');
  const token = 'anomaly-test-token-0123456789';
  const cfg = loadConfig({
    env: {},
    overrides: {
      dataDir: dir.path,
      api: { port: await freePort(), token },
      demo: { devices: 3, interfaces: 2, intervalMs: 1000, backfillMs: 900_000, incidentEveryMs: 0 },
      log: { level: 'warn' },
    },
  });
  const rt = await startRuntime(['poll', 'process', 'sink', 'serve'], cfg, createLogger('warn'));
  try {
    const base = rt.url!;
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const sql = async (q: string) => {
      const r = await fetch(`${base}/api/v1/sql`, { method: 'POST', headers: auth, body: JSON.stringify({ sql: q }) });
      const body = (await r.json()) as { data: Record<string, unknown>[]; message?: string };
      if (r.status !== 200) throw new Error(body.message);
      return body.data;
    };
    // The backfilled history has passed through the detectors once rollups of it are stored.
    await waitFor('the backfill to be processed', async () => Number((await sql("SELECT count() AS n FROM noctua.rollups_1m WHERE metric = 'anomaly_score'"))[0]!.n) > 0, 180_000, 1000);
    const device = rt.demo!.network.deviceNames[2]!;
    const before = Number((await sql(`SELECT count() AS n FROM noctua.events WHERE kind = 'anomaly' AND device = '${device}'`))[0]!.n);
    const r = await fetch(`${base}/api/v1/demo/incidents`, { method: 'POST', headers: auth, body: JSON.stringify({ device, ifIndex: 1, kind: 'saturation', durationMs: 120_000 }) });
    assert.equal(r.status, 201);
    const incident = ((await r.json()) as { incident: { start: number } }).incident;
    const ev = await waitFor('an anomaly event for the incident', async () => {
      const rows = await sql(`SELECT toUnixTimestamp64Milli(ts) AS t, message, severity FROM noctua.events WHERE kind = 'anomaly' AND device = '${device}' AND ts >= fromUnixTimestamp64Milli(toInt64(${incident.start})) ORDER BY ts LIMIT 1`);
      return rows[0];
    }, 90_000, 1000);
    const latency = Number(ev.t) - incident.start;
    assert.ok(latency <= 30_000, `anomaly event ${latency} ms after the incident's first sample`);
    assert.equal(ev.severity, 'warning', 'anomalies are warnings by default');
    assert.match(String(ev.message), new RegExp(device));
    assert.ok(before >= 0);
    // ... and the shipped AnomalyDetected rule (anomaly_active > 0) holds it as a warning alert naming the series
    const alert = await waitFor('an AnomalyDetected alert for the device', async () => {
      const r = await fetch(`${base}/api/v1/alerts?device=${device}&state=firing`, { headers: auth });
      const body = (await r.json()) as { alerts: Array<{ labels: Record<string, string>; annotations: Record<string, string>; severity: string; state: string }> };
      return body.alerts.find((a) => a.labels.alertname === 'AnomalyDetected');
    }, 30_000, 500);
    assert.equal(alert.severity, 'warning');
    assert.ok(alert.labels.of, `the alert names the scored metric (${JSON.stringify(alert.labels)})`);
    // ... and what kind of trouble it is, in its labels and in the summary a ticket gets
    assert.match(alert.labels.reason ?? '', /^(score|extreme|low|change|stuck|silence)(\+\w+)*$/, JSON.stringify(alert.labels));
    assert.ok(alert.annotations.summary!.includes(`(${alert.labels.reason};`), alert.annotations.summary);
  } finally {
    await rt.stop();
    dir.remove();
  }
});
