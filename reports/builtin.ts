import type { ReportSpec } from './config.js';

/**
 * The report every installation has: the week of the network for the Monday meeting. Runs Mondays at
 * 07:00 UTC into outDir (and to its recipients once `reports.list` names it with `to`).
 */
export const NETWORK_WEEKLY: ReportSpec = {
  name: 'network-weekly',
  title: 'Network weekly',
  cron: '0 7 * * 1',
  timezone: 'UTC',
  range: '7d',
  to: [],
  formats: ['pdf', 'xlsx'],
  sections: [
    {
      title: 'Busiest interfaces: 95th percentile of inbound utilisation (5-min peaks)',
      sql: `SELECT concat(r.device, ' ', s.labels['ifName']) AS interface, round(quantile(0.95)(r.max), 1) AS p95_util_pct, round(max(r.max), 1) AS peak_util_pct
FROM noctua.rollups_5m AS r FINAL
INNER JOIN (SELECT series, any(labels) AS labels FROM noctua.series GROUP BY series) AS s ON r.series = s.series
WHERE r.metric = 'if_in_util_pct' AND r.ts >= {from} AND r.ts < {to}
GROUP BY interface ORDER BY p95_util_pct DESC LIMIT 15`,
      chart: { mark: 'bar', x: 'interface', y: 'p95_util_pct' },
      tableRows: 15,
      note: 'Interfaces whose 95th percentile nears 80% are the ones to upgrade before the peaks grow.',
    },
    {
      title: 'Alerts fired, by rule and severity',
      sql: `SELECT rule, severity, count() AS fired, uniqExact(device) AS devices
FROM noctua.alert_history
WHERE state = 'firing' AND previous != 'firing' AND ts >= {from} AND ts < {to}
GROUP BY rule, severity ORDER BY fired DESC LIMIT 30`,
      chart: { mark: 'bar', x: 'rule', y: 'fired', color: 'severity' },
      tableRows: 30,
    },
    {
      title: 'Events per day, by source',
      sql: `SELECT toDate(ts) AS day, source, count() AS events
FROM noctua.events
WHERE ts >= {from} AND ts < {to}
GROUP BY day, source ORDER BY day, source`,
      chart: { mark: 'bar', x: 'day', y: 'events', color: 'source' },
      tableRows: 0,
    },
    {
      title: 'Devices with the most anomalies and security events',
      sql: `SELECT device, countIf(kind = 'anomaly') AS anomalies, countIf(source IN ('syslog', 'suricata', 'fail2ban')) AS security_events, countIf(source = 'snmp-trap') AS traps
FROM noctua.events
WHERE ts >= {from} AND ts < {to}
GROUP BY device ORDER BY anomalies + security_events + traps DESC LIMIT 15`,
      tableRows: 15,
    },
  ],
};
