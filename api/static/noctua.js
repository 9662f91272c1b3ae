// The NOC screen: history from the series API (rollups), live 10 s points over the WebSocket,
// alerts and events from the SQL API. Auth rides the cookie set when opened with ?token=.
'use strict';
const CHARTS = [
  // band: the anomaly detector's expected range drawn behind each line (anomaly_lower/upper, of=metric)
  { metric: 'if_in_bps', title: 'Inbound (bit/s; shaded: expected range)', per: 'ifName', fmt: bits, band: true },
  { metric: 'if_out_bps', title: 'Outbound (bit/s; shaded: expected range)', per: 'ifName', fmt: bits, band: true },
  { metric: 'if_in_util_pct', title: 'Inbound utilisation (%)', per: 'ifName', fmt: (v) => v.toFixed(1) + '%' },
  { metric: 'if_in_errors_ps', title: 'Input errors (/s)', per: 'ifName', fmt: (v) => v.toFixed(1) },
  { metric: 'hrProcessorLoad', title: 'CPU (%)', per: 'device', fmt: (v) => v.toFixed(0) + '%' },
  // one line per scored series (which metric, on which interface), at its highest per point: a mean would hide the peak
  { metric: 'anomaly_score', title: 'Anomaly score (0-1)', per: (l) => (l.of ?? '') + (l.ifName ? ' ' + l.ifName : ''), agg: 'max', fmt: (v) => v.toFixed(2) },
];
const lineLabel = (spec, labels) => (typeof spec.per === 'function' ? spec.per(labels) : labels[spec.per]) || labels.ifIndex;
const COLORS = ['#74b9ff', '#55efc4', '#ffeaa7', '#fab1a0', '#a29bfe', '#fd79a8', '#81ecec', '#e17055', '#00cec9', '#fdcb6e', '#6c5ce7', '#d63031'];
const $ = (id) => document.getElementById(id);
let plots = [];
let ws = null;

function bits(v) {
  if (v == null) return '';
  const u = ['', 'k', 'M', 'G', 'T'];
  let i = 0;
  while (Math.abs(v) >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return v.toFixed(v < 10 ? 2 : 1) + ' ' + u[i] + 'b/s';
}

async function api(path) {
  const r = await fetch(path, { credentials: 'same-origin' });
  if (r.status === 401) throw new Error('not authorised: open the dashboard URL printed by `noctua start` (it carries ?token=)');
  if (!r.ok) throw new Error(path + ': ' + r.status + ' ' + (await r.text()));
  return r.json();
}

async function sql(q) {
  return (await api('/api/v1/sql?q=' + encodeURIComponent(q))).data;
}

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const hhmm = (t) => new Date(typeof t === 'string' ? t.replace(' ', 'T') + 'Z' : t).toLocaleTimeString();

/** One uPlot per metric, a line per interface; data kept as {label -> Map(ts -> value)}. */
function makeChart(spec, rangeMs) {
  const el = document.createElement('div');
  el.className = 'chart';
  el.innerHTML = '<h3>' + esc(spec.title) + '</h3>';
  $('charts').appendChild(el);
  const chart = { spec, el, lines: new Map(), lo: new Map(), hi: new Map(), labels: [], plot: null, rangeMs };
  return chart;
}

/** Each visible line's expected range as a translucent band in its colour, under the lines (canvas, not series: no legend rows). */
function drawBands(u, chart) {
  if (!chart.spec.band) return;
  const ctx = u.ctx;
  const cutoff = Date.now() - chart.rangeMs;
  let drawn = 0;
  ctx.save();
  ctx.beginPath();
  ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
  ctx.clip();
  chart.labels.forEach((l, i) => {
    const lo = chart.lo.get(l);
    const hi = chart.hi.get(l);
    // a line hidden from the legend hides its band: click the others away to read one interface's
    if (!lo || !hi || u.series[i + 1]?.show === false) return;
    const ts = [...hi.keys()].filter((t) => t >= cutoff && lo.has(t)).sort((a, b) => a - b);
    if (ts.length < 2) return;
    const x = (t) => u.valToPos(t / 1000, 'x', true);
    ctx.beginPath();
    ts.forEach((t, k) => (k ? ctx.lineTo(x(t), u.valToPos(hi.get(t), 'y', true)) : ctx.moveTo(x(t), u.valToPos(hi.get(t), 'y', true))));
    for (let k = ts.length - 1; k >= 0; k--) ctx.lineTo(x(ts[k]), u.valToPos(lo.get(ts[k]), 'y', true));
    ctx.closePath();
    ctx.fillStyle = COLORS[i % COLORS.length] + '2e';
    ctx.fill();
    drawn++;
  });
  ctx.restore();
  // how many bands are on screen, for whoever inspects the page (and its test)
  chart.el.dataset.bands = String(drawn);
}

function render(chart) {
  const labels = [...chart.lines.keys()].sort();
  chart.labels = labels;
  const ts = [...new Set(labels.flatMap((l) => [...chart.lines.get(l).keys()]))].sort((a, b) => a - b);
  const cutoff = Date.now() - chart.rangeMs;
  const xs = ts.filter((t) => t >= cutoff);
  const data = [xs.map((t) => t / 1000), ...labels.map((l) => xs.map((t) => chart.lines.get(l).get(t) ?? null))];
  const width = chart.el.clientWidth - 16;
  if (chart.plot && chart.plot.series.length === labels.length + 1) {
    chart.plot.setData(data);
    return;
  }
  if (chart.plot) chart.plot.destroy();
  chart.plot = new uPlot({
    width, height: 180, spanGaps: true,
    scales: { x: { time: true, range: () => [(Date.now() - chart.rangeMs) / 1000, Date.now() / 1000] } },
    hooks: { drawClear: [(u) => drawBands(u, chart)] },
    // away from the cursor the legend reads each line's latest value (a blank would read as 0 b/s: a dead link)
    series: [
      { value: (u, v) => (v == null ? 'latest' : new Date(v * 1000).toLocaleTimeString()) },
      ...labels.map((l, i) => ({ label: l, stroke: COLORS[i % COLORS.length], width: 1.5, value: (u, v, si, idx) => legendValue(chart, u, si, idx, v) })),
    ],
    axes: [{ stroke: '#7f8c9a', grid: { stroke: '#222c38' } }, { stroke: '#7f8c9a', grid: { stroke: '#222c38' }, size: 84, values: (u, vs) => vs.map((v) => chart.spec.fmt(v)) }],
  }, data, chart.el);
}

/** The legend's reading of a line: its value under the cursor, or its latest one when the cursor is off the chart. */
function legendValue(chart, u, si, idx, v) {
  if (idx != null) return v == null ? '-' : chart.spec.fmt(v);
  const ys = u.data[si];
  for (let k = ys.length - 1; k >= 0; k--) if (ys[k] != null) return chart.spec.fmt(ys[k]);
  return '-';
}

async function loadDevice(device, rangeMs) {
  for (const p of plots) p.plot?.destroy();
  $('charts').innerHTML = '';
  plots = CHARTS.map((c) => makeChart(c, rangeMs));
  const step = rangeMs <= 3_600_000 ? 60_000 : rangeMs <= 21_600_000 ? 300_000 : 3_600_000;
  await Promise.all(plots.map(async (chart) => {
    const body = await api(`/api/v1/series?metric=${chart.spec.metric}&device=${encodeURIComponent(device)}&from=-${Math.round(rangeMs / 60000)}m&step=${step}&agg=${chart.spec.agg ?? 'avg'}`);
    for (const s of body.series) {
      const label = lineLabel(chart.spec, s.labels) ?? s.series;
      const m = chart.lines.get(label) ?? new Map();
      for (const [t, v] of s.points) m.set(t, v);
      chart.lines.set(label, m);
    }
    if (chart.spec.band) {
      for (const [metric, into] of [['anomaly_lower', chart.lo], ['anomaly_upper', chart.hi]]) {
        const b = await api(`/api/v1/series?metric=${metric}&device=${encodeURIComponent(device)}&l.of=${chart.spec.metric}&from=-${Math.round(rangeMs / 60000)}m&step=${step}`);
        for (const s of b.series) {
          const m = into.get(lineLabel(chart.spec, s.labels)) ?? new Map();
          for (const [t, v] of s.points) m.set(t, v);
          into.set(lineLabel(chart.spec, s.labels), m);
        }
      }
    }
    render(chart);
  }));
  subscribe(device);
}

function subscribe(device) {
  if (!ws || ws.readyState !== 1) return;
  for (const c of CHARTS) {
    ws.send(JSON.stringify({ op: 'subscribe', id: c.metric, metric: c.metric, device, window: '10s' }));
    if (c.band) for (const b of ['anomaly_lower', 'anomaly_upper']) ws.send(JSON.stringify({ op: 'subscribe', id: b + ':' + c.metric, metric: b, device, window: '10s', labels: { of: c.metric } }));
  }
}

function connect() {
  ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/live');
  ws.onopen = () => {
    $('live').className = 'pill on';
    $('live').textContent = 'live';
    ws.send(JSON.stringify({ op: 'alerts' }));
    subscribe($('device').value);
  };
  ws.onclose = () => {
    $('live').className = 'pill off';
    $('live').textContent = 'live: reconnecting';
    setTimeout(connect, 3000);
  };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'point' && (m.metric === 'anomaly_lower' || m.metric === 'anomaly_upper')) {
      const chart = plots.find((c) => c.spec.band && c.spec.metric === m.labels.of);
      if (!chart || m.labels.device !== $('device').value) return;
      const into = m.metric === 'anomaly_lower' ? chart.lo : chart.hi;
      const label = lineLabel(chart.spec, m.labels);
      into.set(label, (into.get(label) ?? new Map()).set(m.ts, m.avg));
    } else if (m.type === 'point') {
      const chart = plots.find((c) => c.spec.metric === m.metric);
      if (!chart || m.labels.device !== $('device').value) return;
      const label = lineLabel(chart.spec, m.labels);
      const line = chart.lines.get(label) ?? new Map();
      line.set(m.ts, chart.spec.agg === 'max' ? m.max : m.avg);
      chart.lines.set(label, line);
      render(chart);
    } else if (m.type === 'alert') refreshTables();
  };
}

/** Pending and firing alerts with who acknowledged them; firing ones not acknowledged get a button. */
async function refreshActive() {
  const { alerts } = await api('/api/v1/alerts?limit=50');
  // the tab says how many fire, for a screen among others (unacknowledged ones: those still need someone)
  const open = alerts.filter((a) => a.state === 'firing' && !a.ack).length;
  document.title = open > 0 ? `(${open}) Noctua` : 'Noctua';
  $('active').tBodies[0].innerHTML = alerts.map((a) => {
    const ack = a.ack
      ? `<span title="${esc(a.ack.comment || '')}">by ${esc(a.ack.by)}</span>`
      : a.state === 'firing' ? `<button data-fp="${esc(a.fingerprint)}" title="stop repeats until it resolves">ack</button>` : '';
    // an anomaly alert names its metric and what kind of trouble (the reason label: silence, stuck, ...)
    const where = [a.labels.device, a.labels.ifName, a.labels.of].filter(Boolean).join(' ');
    const rule = a.labels.reason ? `${a.rule} (${a.labels.reason})` : a.rule;
    return `<tr class="state-${esc(a.state)}"><td>${hhmm(a.startsAt)}</td><td>${esc(a.state)}${a.flapping ? ' (flapping)' : ''}</td><td class="sev-${esc(a.severity)}">${esc(a.severity)}</td><td title="${esc(a.annotations.summary || '')}">${esc(rule)}</td><td>${esc(where)}</td><td>${ack}</td></tr>`;
  }).join('');
}

/** Acknowledge: who and why, recorded with the alert; repeats stop until it resolves. */
async function acknowledge(fp) {
  const by = window.prompt('Acknowledge as (your name):', localStorage.getItem('noctua.user') || '');
  if (!by) return;
  localStorage.setItem('noctua.user', by);
  const comment = window.prompt('Comment (ticket, what you are doing):', '') || '';
  const r = await fetch('/api/v1/alerts/' + encodeURIComponent(fp) + '/ack', {
    method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by, comment }),
  });
  $('status').textContent = r.ok ? 'acknowledgement sent' : 'ack refused: ' + r.status + ' ' + (await r.text());
  setTimeout(refreshTables, 1500);
}

async function refreshTables() {
  try {
    await refreshActive();
    const alerts = await sql("SELECT ts, state, severity, rule, device FROM noctua.alert_history ORDER BY ts DESC LIMIT 25");
    $('alerts').tBodies[0].innerHTML = alerts.map((a) => `<tr class="state-${esc(a.state)}"><td>${hhmm(a.ts)}</td><td>${esc(a.state)}</td><td class="sev-${esc(a.severity)}">${esc(a.severity)}</td><td>${esc(a.rule)}</td><td>${esc(a.device)}</td></tr>`).join('');
    // an anomaly event's reasons (new shape, silence, stuck, ...) say at a glance what kind of trouble it is
    const events = await sql("SELECT ts, severity, kind, device, message, JSONExtract(fields, 'reasons', 'Array(String)') AS reasons FROM noctua.events ORDER BY ts DESC LIMIT 25");
    $('events').tBodies[0].innerHTML = events.map((e) => `<tr><td>${hhmm(e.ts)}</td><td class="sev-${esc(e.severity)}">${esc(e.severity)}</td><td>${esc(e.kind)}${e.reasons && e.reasons.length ? ` (${esc(e.reasons.join(', '))})` : ''}</td><td>${esc(e.message)}</td></tr>`).join('');
    $('status').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    $('status').textContent = err.message;
  }
}

async function main() {
  try {
    const { devices } = await api('/api/v1/devices');
    // Core first: the devices whose trouble matters most.
    devices.sort((a, b) => (a.device.startsWith('core') ? 0 : 1) - (b.device.startsWith('core') ? 0 : 1) || a.device.localeCompare(b.device));
    $('device').innerHTML = devices.map((d) => `<option>${esc(d.device)}</option>`).join('');
    const go = () => loadDevice($('device').value, Number($('range').value)).catch((err) => ($('status').textContent = err.message));
    $('device').onchange = go;
    $('range').onchange = go;
    $('active').onclick = (e) => {
      const fp = e.target.closest('button')?.dataset.fp;
      if (fp) acknowledge(fp).catch((err) => ($('status').textContent = err.message));
    };
    connect();
    await go();
    await refreshTables();
    setInterval(refreshTables, 15000);
  } catch (err) {
    $('status').textContent = err.message;
  }
}
main();
