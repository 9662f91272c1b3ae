import snmp, { type Session, type Varbind } from 'net-snmp';
import { compareOids } from './oids.js';
import { isException } from './varbind.js';

/**
 * Walks several table columns at once with GETBULK (one request carries every unfinished column, so a
 * 48-port switch's IF-MIB takes a handful of round trips), or with GETNEXT for SNMPv1.
 * tooBig halves max-repetitions, then splits the columns; a looping agent (OIDs not increasing) ends
 * the column instead of the poll.
 */

export interface WalkOptions {
  readonly maxRepetitions: number;
  /** Absolute time (ms) after which no further request is sent. */
  readonly deadline: number;
  readonly v1?: boolean;
  /** Upper bound of rows per column: a runaway agent cannot fill memory. */
  readonly maxRows?: number;
}

export interface WalkResult {
  /** Column OID -> instance index (OID suffix) -> varbind. */
  readonly columns: Map<string, Map<string, Varbind>>;
  requests: number;
  varbinds: number;
  tooBig: number;
}

export class WalkError extends Error {
  constructor(message: string, override readonly cause: unknown, readonly partial: WalkResult) {
    super(message);
    this.name = 'WalkError';
  }
}

export function getBulk(session: Session, oids: string[], nonRepeaters: number, maxRep: number): Promise<Array<Varbind | Varbind[]>> {
  return new Promise((resolve, reject) => {
    session.getBulk(oids, nonRepeaters, maxRep, (err, vbs) => (err ? reject(err) : resolve(vbs)));
  });
}

export function get(session: Session, oids: string[]): Promise<Varbind[]> {
  return new Promise((resolve, reject) => {
    session.get(oids, (err, vbs) => (err ? reject(err) : resolve(vbs)));
  });
}

export function getNext(session: Session, oids: string[]): Promise<Varbind[]> {
  return new Promise((resolve, reject) => {
    session.getNext(oids, (err, vbs) => (err ? reject(err) : resolve(vbs)));
  });
}

export function isTooBig(err: unknown): boolean {
  return err instanceof snmp.RequestFailedError && (err as { status?: number }).status === snmp.ErrorStatus.TooBig;
}

export async function walkColumns(session: Session, columnOids: readonly string[], opts: WalkOptions): Promise<WalkResult> {
  const result: WalkResult = { columns: new Map(), requests: 0, varbinds: 0, tooBig: 0 };
  for (const c of columnOids) result.columns.set(c, new Map());
  const maxRows = opts.maxRows ?? 100_000;
  /** Column -> the OID to continue from. */
  let pending = new Map<string, string>(columnOids.map((c) => [c, c]));
  let reps = Math.max(1, opts.maxRepetitions);
  let width = pending.size; // columns per request; shrinks on tooBig at reps 1
  try {
    while (pending.size > 0) {
      if (Date.now() > opts.deadline) throw new Error('poll deadline passed before the walk finished');
      const batch = [...pending.entries()].slice(0, width);
      const cols = batch.map(([c]) => c);
      const from = batch.map(([, o]) => o);
      let rows: Varbind[][];
      try {
        result.requests++;
        if (opts.v1) rows = (await getNext(session, from)).map((vb) => [vb]);
        else rows = (await getBulk(session, from, 0, reps)).map((x) => (Array.isArray(x) ? x : [x]));
      } catch (err) {
        if (opts.v1 && err instanceof snmp.RequestFailedError && (err as { status?: number }).status === snmp.ErrorStatus.NoSuchName) {
          // v1 signals the end of the MIB view with noSuchName on the column that ran out.
          if (cols.length === 1) {
            pending.delete(cols[0]!);
            continue;
          }
          width = 1;
          continue;
        }
        if (!isTooBig(err)) throw err;
        result.tooBig++;
        if (reps > 1) reps = Math.max(1, Math.floor(reps / 2));
        else if (width > 1) width = Math.max(1, Math.floor(width / 2));
        else throw new Error('agent answers tooBig even for a single varbind');
        continue;
      }
      const next = new Map(pending);
      for (let i = 0; i < cols.length; i++) {
        const col = cols[i]!;
        const prefix = col + '.';
        const table = result.columns.get(col)!;
        let last = from[i]!;
        let done = false;
        for (const vb of rows[i] ?? []) {
          result.varbinds++;
          if (isException(vb) || !vb.oid.startsWith(prefix)) {
            done = true;
            break;
          }
          if (compareOids(vb.oid, last, prefix.length) <= 0) {
            done = true; // agent is not advancing: stop this column rather than loop forever
            break;
          }
          table.set(vb.oid.slice(prefix.length), vb);
          last = vb.oid;
        }
        if ((rows[i] ?? []).length === 0) done = true;
        if (done || table.size >= maxRows) next.delete(col);
        else next.set(col, last);
      }
      pending = next;
    }
  } catch (err) {
    throw new WalkError((err as Error).message, err, result);
  }
  return result;
}
