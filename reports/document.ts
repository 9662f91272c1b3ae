/** What a report run produced before rendering: its sections' rows and charts. */
export interface SectionResult {
  readonly title: string;
  readonly note?: string;
  readonly columns: ReadonlyArray<{ name: string; type: string }>;
  readonly rows: ReadonlyArray<Record<string, unknown>>;
  readonly tableRows: number;
  readonly svg: string | null;
  /** The query failed: the section says so, the others go on. */
  readonly error?: string;
}

export interface ReportDocument {
  readonly name: string;
  readonly title: string;
  readonly from: number;
  readonly to: number;
  readonly generatedAt: number;
  readonly sections: readonly SectionResult[];
}

/** A ClickHouse column type without its Nullable/LowCardinality wrapper: `UInt64`, `Date`, `String`. */
export function baseType(t: string): string {
  return t.replace(/^(Nullable|LowCardinality)\((.*)\)$/, '$2');
}

/** Numbers in every form ClickHouse has (its JSON quotes the 64-bit ones). */
export const isNumericType = (t: string): boolean => /^(U?Int|Float|Decimal)/.test(baseType(t));

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function periodText(from: number, to: number): string {
  const d = (t: number) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
  return `${d(from)} to ${d(to)} UTC`;
}

export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** The report as one self-contained HTML page (inline CSS and SVG): what Chromium prints to PDF. */
export function reportHtml(doc: ReportDocument): string {
  const sections = doc.sections
    .map((s) => {
      const shown = s.rows.slice(0, s.tableRows);
      const table = shown.length === 0 ? '' : `<table><thead><tr>${s.columns.map((c) => `<th>${esc(c.name)}</th>`).join('')}</tr></thead><tbody>${shown
        .map((r) => `<tr>${s.columns.map((c) => `<td class="${typeof r[c.name] === 'number' ? 'n' : ''}">${esc(cellText(r[c.name]))}</td>`).join('')}</tr>`)
        .join('')}</tbody></table>${s.rows.length > shown.length ? `<p class="more">${s.rows.length - shown.length} more rows in the spreadsheet</p>` : ''}`;
      const body = s.error ? `<p class="error">This section could not be made: ${esc(s.error)}</p>` : s.rows.length === 0 ? '<p class="empty">Nothing in this period.</p>' : `${s.svg ? `<div class="chart">${s.svg}</div>` : ''}${table}`;
      return `<section><h2>${esc(s.title)}</h2>${s.note ? `<p class="note">${esc(s.note)}</p>` : ''}${body}</section>`;
    })
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(doc.title)}</title><style>
body{font-family:sans-serif;color:#1d2329;margin:0;font-size:10pt}
header{border-bottom:2px solid #1f6feb;margin-bottom:12pt;padding-bottom:6pt}
h1{font-size:18pt;margin:0}h2{font-size:12pt;margin:14pt 0 4pt}
.period{color:#57606a}section{break-inside:avoid}
table{border-collapse:collapse;width:100%;margin-top:4pt}th,td{border-bottom:1px solid #d0d7de;padding:2pt 4pt;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f6f8fa}
.note,.more,.empty{color:#57606a;font-size:9pt}.error{color:#cf222e}.chart svg{max-width:100%;height:auto}
</style></head><body><header><h1>${esc(doc.title)}</h1><div class="period">${esc(periodText(doc.from, doc.to))} · generated ${esc(new Date(doc.generatedAt).toISOString().slice(0, 16).replace('T', ' '))} UTC by Noctua</div></header>
${sections}
</body></html>`;
}
