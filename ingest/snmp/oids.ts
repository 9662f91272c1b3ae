/**
 * The numeric OIDs the poller collects, resolved here at build time: no MIB files are parsed and no
 * MIB tool is forked at run time (Debian ships no IETF MIBs anyway).
 */

export const SYSTEM = {
  sysDescr: '1.3.6.1.2.1.1.1.0',
  sysObjectID: '1.3.6.1.2.1.1.2.0',
  sysUpTime: '1.3.6.1.2.1.1.3.0',
  sysContact: '1.3.6.1.2.1.1.4.0',
  sysName: '1.3.6.1.2.1.1.5.0',
  sysLocation: '1.3.6.1.2.1.1.6.0',
} as const;

/** UCD-SNMP-MIB memory scalars, in kB. */
export const UCD_MEMORY = {
  memTotalSwap: '1.3.6.1.4.1.2021.4.3.0',
  memAvailSwap: '1.3.6.1.4.1.2021.4.4.0',
  memTotalReal: '1.3.6.1.4.1.2021.4.5.0',
  memAvailReal: '1.3.6.1.4.1.2021.4.6.0',
  memBuffer: '1.3.6.1.4.1.2021.4.14.0',
  memCached: '1.3.6.1.4.1.2021.4.15.0',
} as const;

export type ColumnKind = 'counter32' | 'counter64' | 'gauge' | 'label';

export interface Column {
  readonly name: string;
  readonly oid: string;
  readonly kind: ColumnKind;
}

const IF = '1.3.6.1.2.1.2.2.1.';
const IFX = '1.3.6.1.2.1.31.1.1.1.';

/** IF-MIB ifTable and ifXTable columns, in walk order. */
export const IF_COLUMNS: readonly Column[] = [
  { name: 'ifDescr', oid: IF + '2', kind: 'label' },
  { name: 'ifSpeed', oid: IF + '5', kind: 'gauge' },
  { name: 'ifAdminStatus', oid: IF + '7', kind: 'gauge' },
  { name: 'ifOperStatus', oid: IF + '8', kind: 'gauge' },
  { name: 'ifInOctets', oid: IF + '10', kind: 'counter32' },
  { name: 'ifInUcastPkts', oid: IF + '11', kind: 'counter32' },
  { name: 'ifInDiscards', oid: IF + '13', kind: 'counter32' },
  { name: 'ifInErrors', oid: IF + '14', kind: 'counter32' },
  { name: 'ifOutOctets', oid: IF + '16', kind: 'counter32' },
  { name: 'ifOutUcastPkts', oid: IF + '17', kind: 'counter32' },
  { name: 'ifOutDiscards', oid: IF + '19', kind: 'counter32' },
  { name: 'ifOutErrors', oid: IF + '20', kind: 'counter32' },
  { name: 'ifName', oid: IFX + '1', kind: 'label' },
  { name: 'ifHCInOctets', oid: IFX + '6', kind: 'counter64' },
  { name: 'ifHCInUcastPkts', oid: IFX + '7', kind: 'counter64' },
  { name: 'ifHCOutOctets', oid: IFX + '10', kind: 'counter64' },
  { name: 'ifHCOutUcastPkts', oid: IFX + '11', kind: 'counter64' },
  { name: 'ifHighSpeed', oid: IFX + '15', kind: 'gauge' },
  { name: 'ifAlias', oid: IFX + '18', kind: 'label' },
];

/** 32-bit columns made redundant by an ifHC* twin; skipped once a device is known to have the twin. */
export const SUPERSEDED_BY_HC: Readonly<Record<string, string>> = {
  ifInOctets: 'ifHCInOctets',
  ifOutOctets: 'ifHCOutOctets',
  ifInUcastPkts: 'ifHCInUcastPkts',
  ifOutUcastPkts: 'ifHCOutUcastPkts',
};

/** HOST-RESOURCES-MIB: processor load and storage; UCD-SNMP-MIB: load averages. */
export const HOST_COLUMNS: readonly Column[] = [
  { name: 'hrProcessorLoad', oid: '1.3.6.1.2.1.25.3.3.1.2', kind: 'gauge' },
  { name: 'hrStorageType', oid: '1.3.6.1.2.1.25.2.3.1.2', kind: 'label' },
  { name: 'hrStorageDescr', oid: '1.3.6.1.2.1.25.2.3.1.3', kind: 'label' },
  { name: 'hrStorageAllocationUnits', oid: '1.3.6.1.2.1.25.2.3.1.4', kind: 'gauge' },
  { name: 'hrStorageSize', oid: '1.3.6.1.2.1.25.2.3.1.5', kind: 'gauge' },
  { name: 'hrStorageUsed', oid: '1.3.6.1.2.1.25.2.3.1.6', kind: 'gauge' },
  { name: 'laLoadInt', oid: '1.3.6.1.4.1.2021.10.1.5', kind: 'gauge' },
];

/** hrStorageType values (HOST-RESOURCES-TYPES) as short names for a label. */
export const HR_STORAGE_TYPES: Readonly<Record<string, string>> = {
  '1.3.6.1.2.1.25.2.1.1': 'other',
  '1.3.6.1.2.1.25.2.1.2': 'ram',
  '1.3.6.1.2.1.25.2.1.3': 'virtualMemory',
  '1.3.6.1.2.1.25.2.1.4': 'fixedDisk',
  '1.3.6.1.2.1.25.2.1.5': 'removableDisk',
  '1.3.6.1.2.1.25.2.1.6': 'floppyDisk',
  '1.3.6.1.2.1.25.2.1.7': 'compactDisc',
  '1.3.6.1.2.1.25.2.1.8': 'ramDisk',
  '1.3.6.1.2.1.25.2.1.9': 'flashMemory',
  '1.3.6.1.2.1.25.2.1.10': 'networkDisk',
};

export const LOAD_AVERAGE_BY_INDEX: Readonly<Record<string, string>> = { '1': '1', '2': '5', '3': '15' };

/**
 * Compares dotted numeric OIDs in SNMP lexicographic order, from character `from` on (callers that know
 * both share a prefix skip it). No allocation: it runs once per varbind received.
 */
export function compareOids(a: string, b: string, from = 0): number {
  let i = from;
  let j = from;
  const la = a.length;
  const lb = b.length;
  while (i < la && j < lb) {
    let x = 0;
    let c: number;
    while (i < la && (c = a.charCodeAt(i)) !== 46) {
      x = x * 10 + (c - 48);
      i++;
    }
    let y = 0;
    while (j < lb && (c = b.charCodeAt(j)) !== 46) {
      y = y * 10 + (c - 48);
      j++;
    }
    if (x !== y) return x - y;
    i++;
    j++;
  }
  const aDone = i >= la;
  const bDone = j >= lb;
  return aDone && bDone ? 0 : aDone ? -1 : 1;
}
