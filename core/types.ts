/** The shared vocabulary of Noctua: samples, series, events, alerts. */

/** Label set of a series: device, ifIndex, ifName, ... Keys are sorted when a series key is built. */
export type Labels = Readonly<Record<string, string>>;

/** One observation of one series at the device's event time. */
export interface Sample {
  /** Metric name, e.g. `ifHCInOctets` (counter) or `if_in_bps` (rate). */
  readonly metric: string;
  readonly labels: Labels;
  /** Event time in epoch milliseconds (the device's time of measurement). */
  readonly ts: number;
  readonly value: number;
}

/** How the value of a metric behaves; counters stay counters until processors/rate. */
export type MetricKind = 'gauge' | 'counter32' | 'counter64';

/**
 * One message on the samples topic: one poll of one device.
 * Keyed by `device` so ordering per device holds across partitions.
 */
export interface SampleBatch {
  readonly device: string;
  /** Which source produced the batch: `snmp`, `demo`, `gns3`, ... */
  readonly source: string;
  /** Poll time (epoch ms); samples carry their own ts, usually equal. */
  readonly ts: number;
  readonly samples: readonly Sample[];
}

export type Severity = 'critical' | 'major' | 'minor' | 'warning' | 'info';
export const SEVERITIES: readonly Severity[] = ['critical', 'major', 'minor', 'warning', 'info'];

/** A discrete happening: a syslog line, a trap, an oper-status change, a reboot, an anomaly. */
export interface NetEvent {
  /** Deterministic id (hash of source, device, ts and content) so replays deduplicate. */
  readonly id: string;
  readonly ts: number;
  readonly source: string;
  readonly kind: string;
  readonly severity: Severity;
  readonly device: string;
  readonly message: string;
  /** The original fields, as received. */
  readonly fields: Readonly<Record<string, unknown>>;
}

export type AlertState = 'pending' | 'firing' | 'resolved';

/** One alert state change, as carried on the alerts topic and stored in alert history. */
export interface AlertTransition {
  readonly fingerprint: string;
  readonly ts: number;
  readonly state: AlertState;
  readonly previous: AlertState | 'inactive';
  readonly rule: string;
  readonly severity: Severity;
  readonly labels: Labels;
  readonly annotations: Readonly<Record<string, string>>;
  readonly value: number;
  readonly startsAt: number;
  readonly endsAt: number | null;
}

/** Topic names, in one place. */
export const TOPICS = {
  samples: 'noctua.samples',
  events: 'noctua.events',
  rollups: 'noctua.rollups',
  alerts: 'noctua.alerts',
  targets: 'noctua.targets',
  sshTargets: 'noctua.targets.ssh',
  gns3Targets: 'noctua.targets.gns3',
} as const;
export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];
