import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import { openClickHouse } from '../../storage/clickhouse.js';
import { migrate } from '../../storage/migrations.js';
import { seriesId, seriesKey } from '../../core/series.js';
import { registry } from '../../core/metrics.js';
import { Reporter } from '../../reports/reporter.js';
import { parseReportsConfig } from '../../reports/config.js';
import { NETWORK_WEEKLY } from '../../reports/builtin.js';
import { peerMissing, recentWeekdayAt, tempDir } from '../peers/util.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = peerMissing(existsSync(CHROMIUM), 'chromium', 'apt-get install -y chromium') ?? peerMissing(existsSync('/usr/bin/pdftotext'), 'pdftotext', 'apt-get install -y poppler-utils');
const dt = (t: number) => new Date(t).toISOString().slice(0, 23).replace('T', ' ');
const limits = { maxExecutionTimeS: 10, maxResultRows: 100_000, maxMemoryBytes: 1e9, maxQueryLength: 100_000 };

/** A real SMTP server (the npm smtp-server, what mail relays are tested with), in this process. */
async function startSmtp() {
  const mails: ParsedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, done) {
      simpleParser(stream).then((m) => {
        mails.push(m);
        done();
      }, done);
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as { port: number }).port;
  return { port, mails, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('the Monday report: its sections from ClickHouse as a PDF printed by Chromium, an XLSX and CSVs, e-mailed with the files byte for byte; a hostile or broken section is reported in place; an unreachable mail server keeps the files', { timeout: 180_000, skip: missing }, async () => {
  const dir = tempDir('reports');
  const ch = await openClickHouse({ user: 'default', password: '', database: 'noctua', profile: 'auto', rawTtlDays: 3650 }, dir.path);
  const smtp = await startSmtp();
  try {
    await migrate(ch, { rawTtlDays: 3650 });
    const t0 = recentWeekdayAt(0) - 6 * 86_400_000;
    const to = t0 + 7 * 86_400_000;
    // Three interfaces a week long at 5-min steps: a busy one (its 5-min peaks at 90%, one at 97%), a middling and a quiet one.
    const ifaces = [['core-rtr-1', 'xe-0/0/0', 90], ['dist-sw-1', 'Te1/0/1', 50], ['access-sw-1', 'Gi0/1', 10]] as const;
    const series = [];
    const rollups = [];
    for (const [device, ifName, level] of ifaces) {
      const labels = { device, ifIndex: '1', ifName };
      const key = seriesKey('if_in_util_pct', labels);
      const id = seriesId(key);
      series.push({ series: id, metric: 'if_in_util_pct', device, labels, key, last_seen: dt(to) });
      for (let t = t0; t < to; t += 300_000) {
        const max = device === 'core-rtr-1' && t === t0 + 86_400_000 ? 97 : level;
        rollups.push({ metric: 'if_in_util_pct', series: id, device, ts: dt(t), count: 30, sum: level * 30, min: level - 5, max, first: level, last: level, first_ts: dt(t), last_ts: dt(t), p50: level, p95: level, p99: level, sketch: '{}', revision: 0 });
      }
    }
    await ch.insertRows('noctua.series', series);
    await ch.insertRows('noctua.rollups_5m', rollups);
    const alert = (i: number, rule: string, severity: string, device: string) => ({ ts: dt(t0 + i * 3_600_000), fingerprint: `f${i}`, event: 'state', state: 'firing', previous: 'pending', rule, severity, device, labels: { device }, annotations: {}, value: 1, starts_at: dt(t0 + i * 3_600_000), ends_at: null, suppressed_by: '', flapping: 0, ack_by: '', ack_at: null, ack_comment: '' });
    await ch.insertRows('noctua.alert_history', [alert(1, 'InterfaceDown', 'major', 'dist-sw-1'), alert(2, 'InterfaceDown', 'major', 'access-sw-1'), alert(3, 'HighCpu', 'warning', 'core-rtr-1'), alert(200, 'InterfaceDown', 'major', 'outside-the-period')]);
    const ev = (i: number, source: string, kind: string, device: string) => ({ id: `e${i}`, ts: dt(t0 + i * 600_000), source, kind, severity: 'warning', device, message: 'm', fields: '{}' });
    await ch.insertRows('noctua.events', [ev(1, 'processor', 'anomaly', 'core-rtr-1'), ev(2, 'suricata', 'ids-alert', 'ids-1'), ev(3, 'fail2ban', 'ban', 'bastion'), ev(4, 'fail2ban', 'ban', 'bastion')]);

    const config = parseReportsConfig({
      smtp: { host: '127.0.0.1', port: smtp.port, from: 'noctua@example.net', timeoutMs: 5000 },
      list: [
        { ...NETWORK_WEEKLY, to: ['noc-managers@example.net'], formats: ['pdf', 'xlsx', 'csv'] },
        { name: 'broken', title: 'Broken', range: '7d', formats: ['xlsx'], sections: [{ title: 'Hostile', sql: 'DROP TABLE noctua.events' }, { title: 'Typo', sql: 'SELECT nope FROM noctua.events' }, { title: 'Fine', sql: 'SELECT count() AS events FROM noctua.events' }] },
      ],
    });
    const reporter = new Reporter({ ch, config, limits, dataDir: dir.path });
    const r = await reporter.run('network-weekly', { from: t0, to });
    assert.deepEqual(r.sectionErrors, []);
    assert.deepEqual(r.files.map((f) => f.name), ['network-weekly.pdf', 'network-weekly.xlsx', '01-busiest-interfaces-95th-percentile-of-in.csv', '02-alerts-fired-by-rule-and-severity.csv', '03-events-per-day-by-source.csv', '04-devices-with-the-most-anomalies-and-secu.csv']);

    // The PDF, read back as text: what Chromium printed is the report's content.
    const pdfPath = join(r.dir, 'network-weekly.pdf');
    assert.equal(readFileSync(pdfPath).subarray(0, 5).toString(), '%PDF-');
    const text = execFileSync('pdftotext', ['-layout', pdfPath, '-'], { encoding: 'utf8' });
    for (const s of ['Network weekly', 'Busiest interfaces', 'core-rtr-1 xe-0/0/0', 'Alerts fired, by rule and severity', 'InterfaceDown', 'page 1 of']) assert.ok(text.includes(s), `${s} in the PDF:\n${text.slice(0, 2000)}`);
    assert.ok(!text.includes('outside-the-period'));
    assert.ok(/<svg/.test(readFileSync(pdfPath, 'latin1')) === false, 'the charts are drawn, not pasted as markup');

    // The spreadsheet: every row, numbers as numbers, in the order of the query.
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(readFileSync(join(r.dir, 'network-weekly.xlsx')) as unknown as ArrayBuffer);
    assert.deepEqual(wb.worksheets.map((w) => w.name), ['Report', '1 Busiest interfaces  95th perc', '2 Alerts fired, by rule and sev', '3 Events per day, by source', '4 Devices with the most anomali']);
    const busiest = wb.worksheets[1]!;
    const rows = busiest.getSheetValues().slice(2).map((v) => (v as unknown[]).slice(1));
    assert.deepEqual(rows, [['core-rtr-1 xe-0/0/0', 90, 97], ['dist-sw-1 Te1/0/1', 50, 50], ['access-sw-1 Gi0/1', 10, 10]]);
    const alerts = wb.worksheets[2]!.getSheetValues().slice(2).map((v) => (v as unknown[]).slice(1));
    assert.deepEqual(alerts, [['InterfaceDown', 'major', 2, 2], ['HighCpu', 'warning', 1, 1]]);
    assert.equal(readFileSync(join(r.dir, '04-devices-with-the-most-anomalies-and-secu.csv'), 'utf8').split('\r\n')[0], 'device,anomalies,security_events,traps');

    // The mail: to the recipients, every file attached byte for byte.
    assert.deepEqual(r.mailedTo, ['noc-managers@example.net']);
    assert.equal(smtp.mails.length, 1);
    const mail = smtp.mails[0]!;
    assert.match(mail.subject ?? '', /^Network weekly: /);
    assert.equal((mail.to as { text: string }).text, 'noc-managers@example.net');
    assert.deepEqual(mail.attachments.map((a) => a.filename), r.files.map((f) => f.name));
    for (const a of mail.attachments) assert.ok(a.content.equals(readFileSync(join(r.dir, a.filename!))), `${a.filename} arrived as written`);

    // Hostile and broken sections: refused or failed in place, the rest of the report made, the table untouched.
    const b = await reporter.run('broken', { from: t0, to });
    assert.deepEqual(b.sectionErrors.map((e) => e.section), ['Hostile', 'Typo']);
    assert.match(b.sectionErrors[0]!.error, /read-only|only SELECT|not allowed|refused/i);
    const bw = new ExcelJS.Workbook();
    await bw.xlsx.load(readFileSync(join(b.dir, 'broken.xlsx')) as unknown as ArrayBuffer);
    assert.deepEqual(bw.worksheets[3]!.getSheetValues().slice(2).map((v) => (v as unknown[]).slice(1)), [[4]], 'the events table is still there');

    // The mail server gone: the report is made and kept, the failure said and counted.
    await smtp.close();
    const before = await sent('failed');
    const down = await reporter.run('network-weekly', { from: t0, to: to - 1000 });
    assert.equal(down.mailedTo.length, 0);
    assert.match(down.mailError ?? '', /ECONNREFUSED|connect/);
    assert.ok(existsSync(join(down.dir, 'network-weekly.pdf')));
    assert.equal((await sent('failed')) - before, 1);
  } finally {
    await smtp.close().catch(() => {});
    await ch.close();
    dir.remove();
  }
});

async function sent(outcome: string): Promise<number> {
  const text = await registry.getSingleMetricAsString('noctua_report_mails_total');
  const m = new RegExp(`noctua_report_mails_total\\{report="network-weekly",outcome="${outcome}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}
