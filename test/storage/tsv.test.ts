import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TsvBuilder, escapeTsv } from '../../storage/tsv.js';

test('TsvBuilder writes numbers the way ClickHouse reads them, and escapes strings', () => {
  const b = new TsvBuilder(4); // tiny on purpose: growth is exercised
  b.int(0).tab().int(-42).tab().int(Number.MAX_SAFE_INTEGER).nl();
  b.float(1.5).tab().float(-0.25).tab().float(1e21).tab().float(5e-324).tab().float(NaN).tab().float(Infinity).tab().float(-Infinity).tab().float(1795789784760).nl();
  b.ts(1795789784760).tab().ts(1795789784760).tab().ts(1795789784761).nl();
  b.str('a\tb\nc\\d\re').tab().raw(Buffer.from('pre\t')).str('ünï').nl();
  assert.equal(b.rows, 4);
  assert.equal(
    b.bytes().toString('utf8'),
    '0\t-42\t9007199254740991\n' +
      '1.5\t-0.25\t1e+21\t5e-324\tnan\tinf\t-inf\t1795789784760\n' +
      '1795789784760\t1795789784760\t1795789784761\n' +
      'a\\tb\\nc\\\\d\\re\tpre\tünï\n',
  );
  const body = b.take();
  assert.equal(b.length, 0);
  assert.equal(b.rows, 0);
  b.int(7).nl();
  assert.equal(b.bytes().toString(), '7\n');
  assert.match(body.toString(), /^0\t-42/, 'a taken body is not overwritten by later writes');
  assert.equal(escapeTsv('plain'), 'plain');
});
