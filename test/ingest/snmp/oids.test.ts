import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareOids } from '../../../ingest/snmp/oids.js';
import { counter64, numeric } from '../../../ingest/snmp/varbind.js';
import snmp from 'net-snmp';

test('OIDs compare numerically, component by component', () => {
  const sorted = ['1.3.6.1.2.1.2.2.1.10.2', '1.3.6.1.2.1.2.2.1.10.10', '1.3.6.1.2.1.2.2.1.10.10.1', '1.3.6.1.2.1.2.2.1.11', '1.3.6.1.2.1.31.1.1.1.1.1'];
  for (let i = 0; i < sorted.length; i++) {
    for (let j = 0; j < sorted.length; j++) {
      const c = compareOids(sorted[i]!, sorted[j]!);
      assert.equal(Math.sign(c), Math.sign(i - j), `${sorted[i]} vs ${sorted[j]}`);
    }
  }
  assert.ok(compareOids('1.3.6.1.2.1.2.2.1.10.9', '1.3.6.1.2.1.2.2.1.10.10', '1.3.6.1.2.1.2.2.1.10.'.length) < 0);
  assert.ok(compareOids('1.3.6.1.2.1.2.2.1.10.4294967295', '1.3.6.1.2.1.2.2.1.10.4294967294') > 0);
});

test('Counter64 converts exactly through BigInt', () => {
  const buf = Buffer.from('0fffffffffffffff01', 'hex').subarray(1); // 0xffffffffffffff01, 9-byte form trimmed
  assert.equal(counter64(buf), 0xffffffffffffff01n);
  assert.equal(counter64(Buffer.from([0x00, 0x80, 0, 0, 0, 0, 0, 0, 1])), 2n ** 63n + 1n);
  assert.equal(counter64(Buffer.alloc(0)), 0n);
  assert.equal(numeric({ oid: '1', type: snmp.ObjectType.Counter64, value: Buffer.from([0x10, 0, 0, 0, 0, 0, 0, 1]) }), Number(2n ** 60n + 1n));
  assert.equal(numeric({ oid: '1', type: snmp.ObjectType.Counter64, value: Buffer.from([0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) }), 2 ** 53 - 1);
  assert.equal(numeric({ oid: '1', type: snmp.ObjectType.OctetString, value: Buffer.from('0.42') }), 0.42);
  assert.equal(numeric({ oid: '1', type: snmp.ObjectType.OctetString, value: Buffer.from('eth0') }), undefined);
  assert.equal(numeric({ oid: '1', type: snmp.ObjectType.NoSuchInstance, value: null }), undefined);
});
