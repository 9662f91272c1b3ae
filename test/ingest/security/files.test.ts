import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eveEvent } from '../../../ingest/security/eve.js';
import { fail2banEvent } from '../../../ingest/security/fail2ban.js';
import { FileFollower, PositionStore, type Line, type Position } from '../../../ingest/security/follow.js';
import { tempDir } from '../../peers/util.js';

// Records as Suricata 7 writes them (the EVE format of its documentation).
const ALERT = '{"timestamp":"2026-12-07T14:05:01.123456+0000","flow_id":1234567890,"in_iface":"eth0","event_type":"alert","src_ip":"192.0.2.7","src_port":52113,"dest_ip":"198.51.100.10","dest_port":22,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2001219,"rev":20,"signature":"ET SCAN Potential SSH Scan","category":"Attempted Information Leak","severity":2}}';
const FLOW = '{"timestamp":"2026-12-07T14:05:02.000000+0000","flow_id":1,"event_type":"flow","src_ip":"192.0.2.7","dest_ip":"198.51.100.10","proto":"TCP","flow":{"pkts_toserver":3}}';
const ANOMALY = '{"timestamp":"2026-12-07T14:05:03.5+0100","event_type":"anomaly","src_ip":"2001:db8::1","src_port":443,"dest_ip":"2001:db8::2","dest_port":1234,"proto":"UDP","anomaly":{"type":"decode","event":"ipv4.trunc_pkt","layer":"proto_detect"}}';

test('Suricata EVE: alerts and anomalies are events with their flow, telemetry records are skipped, garbage is a reason', () => {
  const opts = { types: ['alert', 'anomaly', 'drop'], device: 'ids-1' };
  const a = eveEvent(ALERT, opts);
  assert.ok(a.ok);
  assert.deepEqual([a.event.ts, a.event.source, a.event.kind, a.event.severity, a.event.device], [Date.UTC(2026, 11, 7, 14, 5, 1, 123), 'suricata', 'ids-alert', 'minor', 'ids-1']);
  assert.equal(a.event.message, 'ET SCAN Potential SSH Scan: 192.0.2.7:52113 -> 198.51.100.10:22 TCP');
  assert.equal((a.event.fields as { flow_id: number }).flow_id, 1234567890);
  assert.equal(eveEvent(ALERT, opts).ok && (eveEvent(ALERT, opts) as { event: { id: string } }).event.id, a.event.id, 'the same record read again is the same event');
  const n = eveEvent(ANOMALY, opts);
  assert.ok(n.ok);
  assert.equal(n.event.ts, Date.UTC(2026, 11, 7, 13, 5, 3, 500));
  assert.match(n.event.message, /\[2001:db8::1\]:443 -> \[2001:db8::2\]:1234 UDP/);
  assert.deepEqual(eveEvent(FLOW, opts), { ok: false, reason: 'skipped_type', detail: 'flow' });
  for (const [line, reason] of [['{"timestamp":', 'json'], ['[1,2]', 'not_eve'], ['{"event_type":"alert"}', 'not_eve'], ['null', 'not_eve']] as const) {
    const r = eveEvent(line, opts);
    assert.equal(r.ok ? 'ok' : r.reason, reason, line);
  }
});

test('fail2ban: bans, unbans and failures found, in local time; other lines skipped', () => {
  const o = { device: 'bastion', found: true };
  const ban = fail2banEvent('2026-12-07 14:05:01,234 fail2ban.actions        [812]: NOTICE  [sshd] Ban 192.0.2.7', o);
  assert.ok(ban.ok);
  assert.deepEqual([ban.event.ts, ban.event.kind, ban.event.severity, ban.event.message], [new Date(2026, 11, 7, 14, 5, 1, 234).getTime(), 'ban', 'warning', '[sshd] ban 192.0.2.7']);
  assert.deepEqual([(ban.event.fields as { ip: string }).ip, (ban.event.fields as { jail: string }).jail], ['192.0.2.7', 'sshd']);
  const found = fail2banEvent('2026-12-07 14:04:58,101 fail2ban.filter         [812]: INFO    [sshd] Found 192.0.2.7 - 2026-12-07 14:04:58', o);
  assert.ok(found.ok && found.event.kind === 'found' && found.event.message === '[sshd] failure from 192.0.2.7');
  assert.equal(fail2banEvent('2026-12-07 14:04:58,101 fail2ban.filter         [812]: INFO    [sshd] Found 192.0.2.7 - 2026-12-07 14:04:58', { ...o, found: false }).ok, false);
  const unban = fail2banEvent('2026-12-07 14:15:01,240 fail2ban.actions        [812]: NOTICE  [sshd] Unban 2001:db8::7', o);
  assert.ok(unban.ok && unban.event.kind === 'unban' && unban.event.severity === 'info');
  assert.equal(fail2banEvent('2026-12-07 14:00:00,000 fail2ban.server         [812]: INFO    Starting Fail2ban v1.0.2', o).ok, false);
  assert.equal(fail2banEvent('2026-12-07 14:05:01,234 fail2ban.actions        [812]: NOTICE  [sshd] 192.0.2.7 already banned', o).ok, false);
  assert.equal(fail2banEvent('garbage', o).ok, false);
});

test('a followed file: whole lines only, through rotation and truncation, from a saved position, long lines skipped', async () => {
  const dir = tempDir('follow');
  try {
    const path = join(dir.path, 'eve.json');
    writeFileSync(path, 'old 1\nold 2\n');
    const got: string[] = [];
    let last: Position | null = null;
    const make = (from: Position | null, startAt: 'end' | 'beginning') =>
      new FileFollower({ path, from, startAt, maxLineBytes: 1024, onLines: (ls: readonly Line[], end: Position) => {
        got.push(...ls.map((l) => l.text));
        last = end;
      } });
    const f = make(null, 'end');
    await f.poll();
    assert.deepEqual(got, [], 'a file never seen is followed from its end');
    appendFileSync(path, 'a\nb\npart');
    await f.poll();
    assert.deepEqual(got, ['a', 'b']);
    appendFileSync(path, 'ial\r\n' + 'z'.repeat(3000) + '\nc\n');
    await f.poll();
    assert.deepEqual(got, ['a', 'b', 'partial', 'c'], 'a line split across reads is one line; an over-long one is skipped');
    // Rotation: the old file gets a last line after the rename, then the path is a new file.
    renameSync(path, `${path}.1`);
    appendFileSync(`${path}.1`, 'last of old\n');
    writeFileSync(path, 'new 1\n');
    await f.poll();
    assert.deepEqual(got.slice(4), ['last of old', 'new 1']);
    // Truncation (copytruncate).
    truncateSync(path, 0);
    appendFileSync(path, 'n\n');
    await f.poll();
    assert.deepEqual(got.slice(6), ['n']);
    await f.close();
    // A restart from the saved position reads only what came after it.
    const saved = last!;
    appendFileSync(path, 'after restart\n');
    got.length = 0;
    const g = make(saved, 'end');
    await g.poll();
    assert.deepEqual(got, ['after restart']);
    await g.close();
    const store = new PositionStore(join(dir.path, 'pos', 'positions.json'));
    store.set(path, saved);
    store.flush();
    assert.deepEqual(new PositionStore(join(dir.path, 'pos', 'positions.json')).get(path), saved);
    // State saved in the same write, and read back with the positions.
    let state: unknown = null;
    const withState = new PositionStore(join(dir.path, 'pos', 'positions.json'), undefined, { save: () => ({ n: 7 }), load: (s) => (state = s) });
    withState.touch();
    withState.flush();
    new PositionStore(join(dir.path, 'pos', 'positions.json'), undefined, { save: () => null, load: (s) => (state = s) });
    assert.deepEqual(state, { n: 7 });
    assert.deepEqual(new PositionStore(join(dir.path, 'pos', 'positions.json')).get(path), saved, 'positions kept beside the state');
  } finally {
    dir.remove();
  }
});

test('security_events_5m: events per device, source, kind and severity in the last 5 min, back to 0, forgotten after an hour', async () => {
  const { EventCounts } = await import('../../../ingest/security/counts.js');
  const c = new EventCounts(10_000);
  const t0 = 1_800_000_000_000;
  const ev = (ts: number, kind = 'ban', device = 'bastion') => ({ id: String(ts), ts, source: 'fail2ban', kind, severity: 'warning' as const, device, message: '', fields: {} });
  for (let i = 0; i < 12; i++) c.add(ev(t0 + i * 1000), t0 + i * 1000);
  c.add(ev(t0, 'unban'), t0);
  c.add(ev(t0, 'ban', 'other'), t0);
  c.add(ev(t0 - 3_600_000), t0); // read again after a restart: not recent
  const at = (now: number) => c.batches(now).flatMap((b) => b.samples.map((s) => `${s.labels.device}/${s.labels.kind}=${s.value}`)).sort();
  assert.deepEqual(at(t0 + 20_000), ['bastion/ban=12', 'bastion/unban=1', 'other/ban=1']);
  assert.deepEqual(at(t0 + 6 * 60_000), ['bastion/ban=0', 'bastion/unban=0', 'other/ban=0'], 'a rule sees it fall back');
  assert.deepEqual(at(t0 + 61 * 60_000), []);
  assert.equal(c.size, 0);
});

test('security_events_5m counts are state: saved as JSON and taken back, malformed entries left out', async () => {
  const { EventCounts } = await import('../../../ingest/security/counts.js');
  const c = new EventCounts(10_000);
  const t0 = 1_800_000_000_000;
  const ev = (ts: number, kind: string) => ({ id: String(ts), ts, source: 'suricata', kind, severity: 'major' as const, device: 'ids-1', message: '', fields: {} });
  for (let i = 0; i < 5; i++) c.add(ev(t0 + i * 15_000, 'ids-alert'), t0 + i * 15_000);
  c.add(ev(t0, 'ids-drop'), t0);
  const saved = JSON.parse(JSON.stringify(c.toJSON())) as unknown[];
  const back = new EventCounts(10_000);
  back.restore([...saved, null, { labels: { device: 'x' }, last: 1, steps: [] }, { labels: { device: 'x', source: 's', kind: 'k', severity: 'info' }, last: t0, steps: [[1, 'a'], [Math.floor(t0 / 10_000), 2]] }]);
  back.restore('garbage');
  const at = (e: InstanceType<typeof EventCounts>, now: number) => e.batches(now).flatMap((b) => b.samples.map((s) => `${s.labels.device}/${s.labels.kind}=${s.value}`)).sort();
  assert.deepEqual(at(back, t0 + 70_000), ['ids-1/ids-alert=5', 'ids-1/ids-drop=1', 'x/k=2']);
  assert.deepEqual(at(back, t0 + 70_000), at(c, t0 + 70_000).concat('x/k=2').sort());
  back.add(ev(t0 + 80_000, 'ids-alert'), t0 + 80_000);
  assert.deepEqual(at(back, t0 + 80_000).filter((s) => s.includes('ids-alert')), ['ids-1/ids-alert=6'], 'counts on from what was saved');
});
