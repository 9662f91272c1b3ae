import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSyslog } from '../../../ingest/security/syslog-parse.js';
import { SyslogFramer, syslogEvent } from '../../../ingest/security/syslog.js';

const ok = (raw: string) => {
  const r = parseSyslog(raw);
  assert.ok(r.ok, `${raw}: ${r.ok ? '' : r.detail}`);
  return r.msg;
};

test('RFC 5424: header fields, structured data with escapes, the BOM, nil values', () => {
  // RFC 5424 section 6.5, example 3 (with a message).
  const m = ok('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] \uFEFFAn application event');
  assert.equal(m.format, 'rfc5424');
  assert.equal(m.facility, 20);
  assert.equal(m.level, 5);
  assert.equal(m.time, Date.UTC(2003, 9, 11, 22, 14, 15, 3));
  assert.equal(m.hostname, 'mymachine.example.com');
  assert.equal(m.appName, 'evntslog');
  assert.equal(m.procId, null);
  assert.equal(m.msgId, 'ID47');
  assert.deepEqual(m.structuredData, { 'exampleSDID@32473': { iut: '3', eventSource: 'Application', eventID: '1011' }, 'examplePriority@32473': { class: 'high' } });
  assert.equal(m.message, 'An application event');
  const e = ok('<34>1 2003-10-11T22:14:15.003-07:00 - su 77 - [meta x="a \\"b\\" c\\]"] \'su root\' failed');
  assert.equal(e.time, Date.UTC(2003, 9, 12, 5, 14, 15, 3));
  assert.equal(e.hostname, null);
  assert.deepEqual(e.structuredData, { meta: { x: 'a "b" c]' } });
  assert.equal(e.message, "'su root' failed");
  assert.equal(ok('<13>1 - - - - - -').message, '');
});

test('BSD syslog (RFC 3164) as network gear and relays write it', () => {
  const a = ok('<34>Oct 11 22:14:15 mymachine su: \'su root\' failed for lonvick on /dev/pts/8');
  assert.deepEqual([a.format, a.facility, a.level, a.hostname, a.appName, a.time, a.timestamp], ['rfc3164', 4, 2, 'mymachine', 'su', null, 'Oct 11 22:14:15']);
  assert.equal(a.message, "'su root' failed for lonvick on /dev/pts/8");
  const b = ok('<86>Dec  7 14:05:01 gw sshd[1234]: Failed password for root from 192.0.2.7 port 52113 ssh2');
  assert.deepEqual([b.hostname, b.appName, b.procId], ['gw', 'sshd', '1234']);
  // Cisco IOS: a sequence number, '*' (clock not synchronised), milliseconds, no hostname, a mnemonic.
  const c = ok('<187>1234: *Mar  1 00:01:02.345: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down');
  assert.deepEqual([c.level, c.hostname, c.appName], [3, null, null]);
  assert.equal(c.message, '%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down');
  // rsyslog forwarding with RFC 3339 time in the BSD layout.
  const d = ok('<30>2026-12-07T14:05:01.123456+01:00 core-rtr-1 ntpd[88]: synchronized');
  assert.deepEqual([d.time, d.hostname, d.appName], [Date.UTC(2026, 11, 7, 13, 5, 1, 123), 'core-rtr-1', 'ntpd']);
  // A sender that leaves its hostname out, and one that sends no header at all.
  assert.deepEqual([ok('<13>Dec  7 14:05:01 myapp: hello').hostname, ok('<13>Dec  7 14:05:01 myapp: hello').appName], [null, 'myapp']);
  const bare = ok('just a line');
  assert.deepEqual([bare.facility, bare.level, bare.message], [1, 5, 'just a line']);
});

test('garbage is a reason, not a crash', () => {
  for (const [raw, reason] of [
    ['', 'empty'],
    ['\r\n', 'empty'],
    ['<999>1 - - - - - - x', 'bad_pri'],
    ['<abc>hello', 'bad_pri'],
    ['<13>1 - h a p m [unterminated x="y', 'bad_structured_data'],
    ['<13>\u0000\u0001\u0002binary', 'binary'],
  ] as const) {
    const r = parseSyslog(raw);
    assert.equal(r.ok, false, raw);
    if (!r.ok) assert.equal(r.reason, reason, raw);
  }
  for (let i = 0; i < 2000; i++) {
    const bytes = Buffer.from(Array.from({ length: (i % 97) + 1 }, (_, k) => (i * 31 + k * 17) % 256));
    parseSyslog(bytes.toString('utf8'));
  }
});

test('an event per message: severity, device, the receive time for a BSD timestamp, truncation marked', () => {
  const config = { enabled: true, address: '127.0.0.1', maxMessageBytes: 480, maxConnections: 10 };
  const e = syslogEvent(Buffer.from('<34>Oct 11 22:14:15 mymachine su: failed'), '192.0.2.1', 'udp', { config, now: () => 1_000 })!;
  assert.deepEqual([e.source, e.kind, e.severity, e.device, e.ts, e.message], ['syslog', 'syslog', 'major', 'mymachine', 1_000, 'su: failed']);
  assert.equal((e.fields as { facility: string }).facility, 'auth');
  const mapped = syslogEvent(Buffer.from('<11>Oct 11 22:14:15 r1 x: y'), '10.0.0.1', 'udp', { config, deviceFor: (a) => (a === '10.0.0.1' ? 'core-rtr-1' : undefined) })!;
  assert.equal(mapped.device, 'core-rtr-1', 'a polled device keeps its name');
  const long = syslogEvent(Buffer.from(`<13>1 - h app - - - ${'x'.repeat(1000)}`), '192.0.2.1', 'tcp', { config })!;
  assert.equal((long.fields as { truncated?: boolean }).truncated, true);
  assert.ok(Buffer.byteLength(long.message) < 480);
  assert.equal(syslogEvent(Buffer.from('<999>bad'), '192.0.2.1', 'udp', { config }), null);
  const twice = [1, 2].map(() => syslogEvent(Buffer.from('<13>same'), '192.0.2.1', 'udp', { config, now: () => 5 })!.id);
  assert.notEqual(twice[0], twice[1], 'two identical messages are two events');
});

test('TCP framing: octet counting and newlines mixed, split anywhere, an over-long line cut, a hostile count ends the stream', () => {
  const got: string[] = [];
  let fatal = '';
  const f = new SyslogFramer(480, (m) => got.push(m.toString()), (_r, d) => (fatal = d));
  const stream = Buffer.from(`11 <13>1 - - -\n<13>plain one\n<13>plain two\r\n14 <13>counted!!!<13>zero\0${'y'.repeat(600)}\n<13>after\n`);
  for (let i = 0; i < stream.length; i += 7) f.push(stream.subarray(i, i + 7));
  assert.deepEqual(got.slice(0, 5), ['<13>1 - - -', '<13>plain one', '<13>plain two\r', '<13>counted!!!', '<13>zero']);
  assert.equal(got[5]!.length, 481, 'cut, one byte over so the receiver marks it');
  assert.equal(got[6], '<13>after');
  // Announced longer than the bound: the head, cut, then the next frame; never more than the bound held.
  got.length = 0;
  const big = Buffer.concat([Buffer.from('5000 <13>'), Buffer.alloc(4996, 0x61), Buffer.from('9 <13>next!')]);
  for (let i = 0; i < big.length; i += 333) f.push(big.subarray(i, i + 333));
  assert.deepEqual(got.map((m) => m.length), [481, 9]);
  assert.equal(got[1], '<13>next!');
  f.push(Buffer.from('99999999 x'));
  assert.match(fatal, /octet count/);
  const g: string[] = [];
  const h = new SyslogFramer(480, (m) => g.push(m.toString()), () => {});
  h.push(Buffer.from('<13>no newline at the end'));
  h.end();
  assert.deepEqual(g, ['<13>no newline at the end']);
});
