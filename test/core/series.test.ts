import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seriesKey, seriesId, seriesIdReference } from '../../core/series.js';

test('series keys sort labels and escape values', () => {
  assert.equal(seriesKey('if_in_bps', { ifName: 'ge-0/0/1', device: 'r1' }), 'if_in_bps{device="r1",ifName="ge-0/0/1"}');
  assert.equal(seriesKey('up', {}), 'up');
  assert.equal(seriesKey('m', { a: 'x"y\\z' }), 'm{a="x\\"y\\\\z"}');
});

test('the fast 64-bit FNV-1a equals the BigInt reference on many keys', () => {
  for (let i = 0; i < 5000; i++) {
    const k = seriesKey('ifHCInOctets', { device: `dev-${i % 97}`, ifIndex: String(i), ifAlias: 'ü→' + i.toString(36).repeat(i % 7) });
    assert.equal(seriesId(k), seriesIdReference(k), k);
  }
  // Published FNV-1a 64 test vectors.
  assert.equal(BigInt(seriesId('')).toString(16), 'cbf29ce484222325');
  assert.equal(BigInt(seriesId('a')).toString(16), 'af63dc4c8601ec8c');
  assert.equal(BigInt(seriesId('foobar')).toString(16), '85944171f73967e8');
});
