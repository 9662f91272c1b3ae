import type { Varbind } from 'net-snmp';
import type { Labels, Sample, SampleBatch } from '../../core/types.js';
import { HOST_COLUMNS, HR_STORAGE_TYPES, IF_COLUMNS, LOAD_AVERAGE_BY_INDEX, SYSTEM, UCD_MEMORY, type Column } from './oids.js';
import { numeric, text, isException } from './varbind.js';

/**
 * Turns what one poll read from a device into ONE SampleBatch: raw counters stay counters (rates are
 * processors/rate's job), gauges as they are, identity (sysName, ifName, ifAlias) as labels.
 * One labels object per interface is shared by all its samples (the batch codec dedups by identity).
 */

export interface PollData {
  /** Scalars by OID (system group, UCD memory). */
  readonly scalars: ReadonlyMap<string, Varbind>;
  /** Column OID -> index -> varbind. */
  readonly columns: ReadonlyMap<string, ReadonlyMap<string, Varbind>>;
}

export interface DeviceInfo {
  sysDescr?: string;
  sysObjectID?: string;
  sysName?: string;
  sysLocation?: string;
  sysContact?: string;
  sysUpTime?: number;
}

export interface Collected {
  readonly batch: SampleBatch;
  readonly info: DeviceInfo;
  readonly interfaces: number;
  /** True when every interface with 32-bit octet counters also has ifHC* ones (the 32-bit columns can be skipped). */
  readonly hcCovers: boolean;
}

const byName = new Map<string, Column>([...IF_COLUMNS, ...HOST_COLUMNS].map((c) => [c.name, c]));
const IF_NUMERIC = IF_COLUMNS.filter((c) => c.kind !== 'label');

export function collect(device: string, targetLabels: Labels, ts: number, data: PollData): Collected {
  const samples: Sample[] = [];
  const devLabels: Labels = { ...targetLabels, device };
  const info: DeviceInfo = {};
  const scalar = (oid: string): Varbind | undefined => {
    const vb = data.scalars.get(oid);
    return vb && !isException(vb) ? vb : undefined;
  };
  for (const [name, oid] of Object.entries(SYSTEM)) {
    const vb = scalar(oid);
    if (!vb) continue;
    if (name === 'sysUpTime') {
      const v = numeric(vb);
      if (v !== undefined) {
        info.sysUpTime = v;
        samples.push({ metric: 'sysUpTime', labels: devLabels, ts, value: v });
      }
    } else {
      (info as Record<string, string | undefined>)[name] = text(vb);
    }
  }
  for (const [name, oid] of Object.entries(UCD_MEMORY)) {
    const vb = scalar(oid);
    const v = vb && numeric(vb);
    if (v !== undefined) samples.push({ metric: name, labels: devLabels, ts, value: v });
  }

  const col = (name: string): ReadonlyMap<string, Varbind> | undefined => data.columns.get(byName.get(name)!.oid);

  // Interfaces: the union of indexes over every IF-MIB column read.
  const indexes = new Set<string>();
  for (const c of IF_COLUMNS) for (const idx of col(c.name)?.keys() ?? []) indexes.add(idx);
  const hc = col('ifHCInOctets');
  const hcCovers = (hc?.size ?? 0) > 0 && [...(col('ifInOctets')?.keys() ?? [])].every((i) => hc!.has(i));
  const labelOf = (name: string, idx: string): string | undefined => {
    const vb = col(name)?.get(idx);
    return vb ? text(vb) : undefined;
  };
  for (const idx of [...indexes].sort((a, b) => Number(a) - Number(b))) {
    const labels: Record<string, string> = { ...targetLabels, device, ifIndex: idx };
    const ifName = labelOf('ifName', idx) || labelOf('ifDescr', idx);
    if (ifName) labels.ifName = ifName;
    const ifAlias = labelOf('ifAlias', idx);
    if (ifAlias) labels.ifAlias = ifAlias;
    const frozen: Labels = labels;
    const ifHasHC = col('ifHCInOctets')?.has(idx) ?? false;
    for (const c of IF_NUMERIC) {
      // 32-bit twins are noise next to ifHC* (rate prefers 64-bit); send them only where HC is missing.
      if (ifHasHC && (c.name === 'ifInOctets' || c.name === 'ifOutOctets' || c.name === 'ifInUcastPkts' || c.name === 'ifOutUcastPkts')) continue;
      const vb = col(c.name)?.get(idx);
      if (!vb) continue;
      const v = numeric(vb);
      if (v !== undefined) samples.push({ metric: c.name, labels: frozen, ts, value: v });
    }
  }

  for (const [idx, vb] of col('hrProcessorLoad') ?? []) {
    const v = numeric(vb);
    if (v !== undefined) samples.push({ metric: 'hrProcessorLoad', labels: { ...targetLabels, device, hrDeviceIndex: idx }, ts, value: v });
  }
  for (const [idx, sizeVb] of col('hrStorageSize') ?? []) {
    const units = numeric(col('hrStorageAllocationUnits')?.get(idx) ?? sizeVb) ?? 1;
    const size = numeric(sizeVb);
    const usedVb = col('hrStorageUsed')?.get(idx);
    const used = usedVb ? numeric(usedVb) : undefined;
    const typeVb = col('hrStorageType')?.get(idx);
    const typeOid = typeVb ? text(typeVb) ?? '' : '';
    const labels: Labels = {
      ...targetLabels,
      device,
      hrStorageIndex: idx,
      hrStorageDescr: labelOf('hrStorageDescr', idx) ?? '',
      hrStorageType: HR_STORAGE_TYPES[typeOid] ?? typeOid,
    };
    if (size !== undefined) samples.push({ metric: 'hrStorageSizeBytes', labels, ts, value: size * units });
    if (used !== undefined) samples.push({ metric: 'hrStorageUsedBytes', labels, ts, value: used * units });
  }
  for (const [idx, vb] of col('laLoadInt') ?? []) {
    const v = numeric(vb);
    if (v !== undefined) samples.push({ metric: 'laLoadInt', labels: { ...targetLabels, device, la: LOAD_AVERAGE_BY_INDEX[idx] ?? idx }, ts, value: v });
  }
  return { batch: { device, source: 'snmp', ts, samples }, info, interfaces: indexes.size, hcCovers };
}
