import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReportsConfig } from '../../reports/config.js';
import { reportHtml } from '../../reports/document.js';
import { renderCsv } from '../../reports/render.js';
import { chartSvg } from '../../reports/chart.js';

test('reports config: every problem named, schedules and periods checked, recipients need a mail server', () => {
  assert.throws(
    () => parseReportsConfig({ list: [
      { name: 'Bad Name', title: 't', sections: [{ title: 's', sql: 'SELECT 1' }] },
      { name: 'a', title: 't', cron: 'every monday!', range: '7 days', to: ['noc@example.net'], sections: [{ title: 's', sql: 'SELECT 1' }] },
    ] }),
    (err: Error & { problems?: string[] }) => {
      assert.match(err.message, /config\.reports\.list\.0\.name/);
      return true;
    },
  );
  assert.throws(
    () => parseReportsConfig({ list: [{ name: 'a', title: 't', cron: 'every monday!', range: '7 days', to: ['noc@example.net'], sections: [{ title: 's', sql: 'SELECT 1' }] }] }),
    (err: Error & { problems?: string[] }) => {
      assert.equal(err.problems?.length, 3, err.message);
      assert.match(err.message, /list\.0\.range/);
      assert.match(err.message, /list\.0\.cron/);
      assert.match(err.message, /recipients need reports\.smtp/);
      return true;
    },
  );
  const ok = parseReportsConfig({ list: [{ name: 'weekly-2', title: 'T', cron: '0 7 * * 1', timezone: 'Europe/Paris', sections: [{ title: 's', sql: 'SELECT 1' }] }] });
  assert.deepEqual([ok.list[0]!.range, ok.list[0]!.formats, ok.keep], ['7d', ['pdf', 'xlsx'], 20]);
});

test('what devices and queries return is text in the report, never markup; CSV quotes what it must', async () => {
  const hostile = '<script>fetch("http://x")</script>';
  const html = reportHtml({ name: 'r', title: 'T <b>', from: 0, to: 86_400_000, generatedAt: 0, sections: [
    { title: 'S & co', columns: [{ name: 'device', type: 'String' }, { name: 'n', type: 'UInt64' }], rows: [{ device: hostile, n: 12345 }], tableRows: 5, svg: null },
    { title: 'Broken', columns: [], rows: [], tableRows: 0, svg: null, error: 'Code: 62. Syntax error <here>' },
  ] });
  assert.ok(!html.includes('<script>') && !html.includes('<b>') && !html.includes('<here>'));
  assert.ok(html.includes('&lt;script&gt;') && html.includes('12,345') && html.includes('S &amp; co'));
  const csv = renderCsv({ title: 's', columns: [{ name: 'a', type: 'String' }, { name: 'b', type: 'Float64' }], rows: [{ a: 'x, "y"\nz', b: 1.5 }, { a: null, b: 2 }], tableRows: 0, svg: null }).toString();
  assert.equal(csv, 'a,b\r\n"x, ""y""\nz",1.5\r\n,2\r\n');
  const svg = await chartSvg({ mark: 'bar', x: 'device', y: 'n', color: 'severity' }, [{ device: 'r1', n: 3, severity: 'critical' }, { device: 'r2', n: 1, severity: 'warning' }], new Map([['device', 'String'], ['n', 'UInt64'], ['severity', 'String']]));
  assert.match(svg, /^<svg/);
  assert.ok(svg.includes('#cf222e'), 'critical is red whatever its order');
});
