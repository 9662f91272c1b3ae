/**
 * First line of defence for analysts' ad-hoc SQL: one statement, read-only kinds only, and none of
 * the clauses that could escape the limits the engine is given (SETTINGS, FORMAT, INTO OUTFILE).
 * The engine's readonly setting is the second line (storage/query.ts); this guard exists because a
 * subquery's own `SETTINGS readonly=0` overrides an outer readonly=1 in the embedded engine and
 * `INTO OUTFILE` writes files even under readonly=1 (both verified in test/storage/sql.test.ts).
 */

export class SqlRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SqlRejectedError';
  }
}

export type Token =
  | { readonly kind: 'word'; readonly text: string; readonly upper: string; readonly pos: number }
  | { readonly kind: 'quoted'; readonly text: string; readonly pos: number }
  | { readonly kind: 'string'; readonly pos: number }
  | { readonly kind: 'number'; readonly pos: number }
  | { readonly kind: 'punct'; readonly text: string; readonly pos: number };

/** ClickHouse lexical rules, enough to tell keywords from strings, quoted names and comments. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      i++;
    } else if ((c === '-' && sql[i + 1] === '-') || c === '#') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const start = i;
      let depth = 0;
      while (i < n) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
          if (depth === 0) break;
        } else i++;
      }
      if (depth !== 0) throw new SqlRejectedError(`unterminated comment starting at position ${start}`);
    } else if (c === "'" || c === '"' || c === '`') {
      const start = i;
      i++;
      let text = '';
      for (;;) {
        if (i >= n) throw new SqlRejectedError(`unterminated ${c === "'" ? 'string' : 'quoted identifier'} starting at position ${start}`);
        const d = sql[i]!;
        if (d === '\\') {
          text += sql[i + 1] ?? '';
          i += 2;
        } else if (d === c) {
          if (sql[i + 1] === c) {
            text += c;
            i += 2;
          } else {
            i++;
            break;
          }
        } else {
          text += d;
          i++;
        }
      }
      out.push(c === "'" ? { kind: 'string', pos: start } : { kind: 'quoted', text, pos: start });
    } else if (c === '$') {
      // Heredoc strings: $tag$ ... $tag$
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (!m) {
        out.push({ kind: 'punct', text: c, pos: i++ });
        continue;
      }
      const end = sql.indexOf(m[0], i + m[0].length);
      if (end < 0) throw new SqlRejectedError(`unterminated heredoc string starting at position ${i}`);
      out.push({ kind: 'string', pos: i });
      i = end + m[0].length;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      const start = i;
      while (i < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[i]!)) i++;
      const text = sql.slice(start, i);
      out.push({ kind: 'word', text, upper: text.toUpperCase(), pos: start });
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      const start = i;
      while (i < n && /[0-9A-Za-z_.]/.test(sql[i]!)) {
        // exponent sign: 1e-5
        if ((sql[i] === 'e' || sql[i] === 'E') && (sql[i + 1] === '-' || sql[i + 1] === '+')) i++;
        i++;
      }
      out.push({ kind: 'number', pos: start });
    } else {
      out.push({ kind: 'punct', text: c, pos: i++ });
    }
  }
  return out;
}

export type ReadOnlyKind = 'SELECT' | 'WITH' | 'SHOW' | 'DESCRIBE' | 'EXPLAIN';

export interface CheckedSql {
  /** The statement without a trailing semicolon. */
  readonly sql: string;
  readonly kind: ReadOnlyKind;
}

const ALLOWED: Record<string, ReadOnlyKind> = { SELECT: 'SELECT', WITH: 'WITH', SHOW: 'SHOW', DESCRIBE: 'DESCRIBE', DESC: 'DESCRIBE', EXPLAIN: 'EXPLAIN' };

/** Validates an ad-hoc statement; throws SqlRejectedError with the reason a user can act on. */
export function checkReadOnlySql(sql: string, maxLength = 100_000): CheckedSql {
  if (typeof sql !== 'string' || sql.trim() === '') throw new SqlRejectedError('empty query');
  if (sql.length > maxLength) throw new SqlRejectedError(`query is ${sql.length} characters long; the limit is ${maxLength}`);
  if (sql.includes('\0')) throw new SqlRejectedError('query contains a NUL character');
  const tokens = tokenize(sql);
  // A trailing semicolon is fine; any other one separates statements.
  let end = tokens.length;
  while (end > 0 && tokens[end - 1]!.kind === 'punct' && (tokens[end - 1] as { text: string }).text === ';') end--;
  if (end === 0) throw new SqlRejectedError('empty query');
  for (let i = 0; i < end; i++) {
    const t = tokens[i]!;
    if (t.kind === 'punct' && t.text === ';') throw new SqlRejectedError(`only one statement per query (found ';' at position ${t.pos})`);
  }
  const first = tokens[0]!;
  let kind: ReadOnlyKind | undefined;
  if (first.kind === 'word') kind = ALLOWED[first.upper];
  else if (first.kind === 'punct' && first.text === '(') kind = 'SELECT';
  if (!kind) {
    const what = first.kind === 'word' ? first.text : sql.slice(first.pos, first.pos + 10);
    throw new SqlRejectedError(`only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN queries are allowed (got ${what})`);
  }
  for (let i = 0; i < end; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'word') continue;
    const prev = tokens[i - 1];
    const next = tokens[i + 1];
    const afterDot = prev?.kind === 'punct' && prev.text === '.';
    const isCall = next?.kind === 'punct' && next.text === '(';
    if (afterDot || isCall) continue; // system.settings, format(...)
    if (t.upper === 'SETTINGS') throw new SqlRejectedError(`SETTINGS clauses are not allowed (position ${t.pos}): limits are set by the server`);
    if (t.upper === 'FORMAT') throw new SqlRejectedError(`FORMAT clauses are not allowed (position ${t.pos}): choose the output format with the request`);
    if (t.upper === 'OUTFILE') throw new SqlRejectedError(`INTO OUTFILE is not allowed (position ${t.pos})`);
  }
  if (kind === 'DESCRIBE') {
    // DESCRIBE of a table function or subquery infers schemas from files or URLs: only table names.
    let i = 1;
    if (tokens[i]?.kind === 'word' && (tokens[i] as { upper: string }).upper === 'TABLE') i++;
    const rest = tokens.slice(i, end);
    const nameOnly =
      rest.length > 0 &&
      rest.every((t, j) => (j % 2 === 0 ? t.kind === 'word' || t.kind === 'quoted' : t.kind === 'punct' && t.text === '.')) &&
      rest.length % 2 === 1 &&
      rest.length <= 3;
    if (!nameOnly) throw new SqlRejectedError('DESCRIBE accepts a table name only ([db.]table)');
  }
  const stop = end < tokens.length ? tokens[end]!.pos : sql.length;
  return { sql: sql.slice(0, stop).trim(), kind };
}
