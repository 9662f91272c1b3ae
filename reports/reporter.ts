import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Cron } from 'croner';
import nodemailer from 'nodemailer';
import type { ClickHouse } from '../storage/clickhouse.js';
import { runReadOnlySql } from '../storage/query.js';
import type { Config } from '../core/config.js';
import { M, counter, histogram } from '../core/metrics.js';
import type { Logger } from '../core/log.js';
import { parseDuration } from '../processors/window.js';
import { NETWORK_WEEKLY } from './builtin.js';
import { chartSvg } from './chart.js';
import { isNumericType, periodText, type ReportDocument, type SectionResult } from './document.js';
import { renderCsv, renderPdf, renderXlsx } from './render.js';
import type { ReportsConfig, ReportSpec } from './config.js';

const runs = counter('noctua_reports_total', 'Report runs, by report and outcome', ['report', 'outcome']);
const seconds = histogram('noctua_report_seconds', 'Time to make a report (queries, charts, PDF, XLSX)', ['report'], [0.5, 1, 2, 5, 10, 30, 60, 120]);
const mails = counter('noctua_report_mails_total', 'Report e-mails, by outcome', ['report', 'outcome']);

export interface RunOptions {
  /** The period; default: the report's range ending now. */
  readonly from?: number;
  readonly to?: number;
  /** E-mail it to the report's recipients (default true). */
  readonly deliver?: boolean;
}

export interface RunResult {
  readonly report: string;
  readonly from: number;
  readonly to: number;
  /** Folder the files were written to. */
  readonly dir: string;
  readonly files: ReadonlyArray<{ name: string; bytes: number }>;
  /** Recipients it was sent to; empty when it has none (or delivery was not asked). */
  readonly mailedTo: readonly string[];
  readonly mailError?: string;
  /** Sections whose query failed (the report is made without them). */
  readonly sectionErrors: ReadonlyArray<{ section: string; error: string }>;
  readonly ms: number;
}

export interface ReporterOptions {
  readonly ch: ClickHouse;
  readonly config: ReportsConfig;
  readonly limits: Config['api']['sql'];
  readonly dataDir: string;
  readonly log?: Logger;
}

/** Makes reports on demand and on their schedules, one at a time (each PDF starts a browser). */
export class Reporter {
  private readonly specs: Map<string, ReportSpec>;
  private readonly crons: Cron[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private readonly last = new Map<string, RunResult | { error: string; at: number }>();
  readonly outDir: string;

  constructor(private readonly o: ReporterOptions) {
    this.specs = new Map([[NETWORK_WEEKLY.name, NETWORK_WEEKLY], ...o.config.list.map((r) => [r.name, r] as [string, ReportSpec])]);
    this.outDir = isAbsolute(o.config.outDir) ? o.config.outDir : resolve(o.dataDir, o.config.outDir);
  }

  list(): Array<{ name: string; title: string; cron: string | null; next: number | null; to: readonly string[]; last: RunResult | { error: string; at: number } | null }> {
    return [...this.specs.values()].map((s) => {
      const cron = this.crons.find((c) => c.name === s.name);
      return { name: s.name, title: s.title, cron: s.cron ?? null, next: cron?.nextRun()?.getTime() ?? null, to: s.to, last: this.last.get(s.name) ?? null };
    });
  }

  has(name: string): boolean {
    return this.specs.has(name);
  }

  /** Schedules every report that has a cron. */
  start(): void {
    for (const s of this.specs.values()) {
      if (!s.cron) continue;
      const job = new Cron(s.cron, { name: s.name, timezone: s.timezone, protect: true }, () => {
        // The period ends at the scheduled time, not when the run got to start.
        const to = Date.now();
        this.run(s.name, { to }).catch(() => {});
      });
      this.crons.push(job);
    }
    this.o.log?.info({ reports: this.specs.size, scheduled: this.crons.map((c) => `${c.name} next ${c.nextRun()?.toISOString()}`) }, 'reports scheduled');
  }

  stop(): Promise<unknown> {
    for (const c of this.crons) c.stop();
    this.crons.length = 0;
    return this.chain.catch(() => {});
  }

  run(name: string, opts: RunOptions = {}): Promise<RunResult> {
    const spec = this.specs.get(name);
    if (!spec) return Promise.reject(new Error(`no report ${name}; reports: ${[...this.specs.keys()].join(', ')}`));
    const next = this.chain.then(() => this.runNow(spec, opts));
    this.chain = next.catch(() => {});
    return next;
  }

  private async runNow(spec: ReportSpec, opts: RunOptions): Promise<RunResult> {
    const started = performance.now();
    const to = opts.to ?? Date.now();
    const from = opts.from ?? to - parseDuration(spec.range, 'range');
    const log = this.o.log?.child({ report: spec.name });
    try {
      const doc = await this.document(spec, from, to);
      const dir = join(this.outDir, spec.name, `${stamp(from)}_${stamp(to)}`);
      mkdirSync(dir, { recursive: true });
      const files: Array<{ name: string; bytes: number; content: Buffer; type: string }> = [];
      const put = (fileName: string, content: Buffer, type: string) => {
        writeFileSync(join(dir, fileName), content);
        files.push({ name: fileName, bytes: content.length, content, type });
      };
      if (spec.formats.includes('pdf')) put(`${spec.name}.pdf`, await renderPdf(doc, this.o.config.chromium), 'application/pdf');
      if (spec.formats.includes('xlsx')) put(`${spec.name}.xlsx`, await renderXlsx(doc), 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
      if (spec.formats.includes('csv')) doc.sections.forEach((s, i) => put(`${String(i + 1).padStart(2, '0')}-${slug(s.title)}.csv`, renderCsv(s), 'text/csv'));
      this.prune(spec.name);
      let mailedTo: readonly string[] = [];
      let mailError: string | undefined;
      if (opts.deliver !== false && spec.to.length > 0) {
        try {
          await this.mail(spec, doc, files);
          mailedTo = spec.to;
          mails.inc({ report: spec.name, outcome: 'sent' });
        } catch (err) {
          mailError = (err as Error).message;
          mails.inc({ report: spec.name, outcome: 'failed' });
          M.errors.inc({ component: 'reports', kind: 'mail' });
          log?.error({ to: spec.to, smtp: this.o.config.smtp?.host, err: mailError }, 'report made but not mailed (the files are in its folder)');
        }
      }
      const sectionErrors = doc.sections.filter((s) => s.error).map((s) => ({ section: s.title, error: s.error! }));
      const result: RunResult = { report: spec.name, from, to, dir, files: files.map((f) => ({ name: f.name, bytes: f.bytes })), mailedTo, ...(mailError ? { mailError } : {}), sectionErrors, ms: Math.round(performance.now() - started) };
      runs.inc({ report: spec.name, outcome: sectionErrors.length > 0 || mailError ? 'partial' : 'ok' });
      seconds.observe({ report: spec.name }, (performance.now() - started) / 1000);
      this.last.set(spec.name, result);
      log?.info({ dir, files: result.files, mailedTo, sectionErrors: sectionErrors.length, ms: result.ms }, 'report made');
      return result;
    } catch (err) {
      runs.inc({ report: spec.name, outcome: 'failed' });
      M.errors.inc({ component: 'reports', kind: 'render' });
      this.last.set(spec.name, { error: (err as Error).message, at: Date.now() });
      log?.error({ err: (err as Error).message }, 'report failed');
      throw err;
    }
  }

  /** Runs each section's query for the period and draws its chart; a failing section is reported in place. */
  private async document(spec: ReportSpec, from: number, to: number): Promise<ReportDocument> {
    const sections: SectionResult[] = [];
    for (const s of spec.sections) {
      const sql = s.sql.replaceAll('{from}', dt64(from)).replaceAll('{to}', dt64(to));
      try {
        const r = await runReadOnlySql(this.o.ch, sql, { format: 'json', limits: this.o.limits });
        if (r.format !== 'json') throw new Error('unexpected result format');
        const types = new Map(r.meta.map((m) => [m.name, m.type]));
        const rows = (r.data as Record<string, unknown>[]).map((row) => numeric(row, types));
        const svg = s.chart && rows.length > 0 ? await chartSvg(s.chart, rows, types) : null;
        sections.push({ title: s.title, ...(s.note ? { note: s.note } : {}), columns: r.meta, rows, tableRows: s.tableRows, svg });
      } catch (err) {
        M.errors.inc({ component: 'reports', kind: 'section' });
        this.o.log?.warn({ report: spec.name, section: s.title, err: (err as Error).message }, 'report section failed');
        sections.push({ title: s.title, columns: [], rows: [], tableRows: 0, svg: null, error: (err as Error).message });
      }
    }
    return { name: spec.name, title: spec.title, from, to, generatedAt: Date.now(), sections };
  }

  private async mail(spec: ReportSpec, doc: ReportDocument, files: ReadonlyArray<{ name: string; content: Buffer; type: string }>): Promise<void> {
    const smtp = this.o.config.smtp;
    if (!smtp) throw new Error('reports.smtp is not configured');
    const transport = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
      connectionTimeout: smtp.timeoutMs,
      greetingTimeout: smtp.timeoutMs,
      socketTimeout: smtp.timeoutMs,
    });
    const summary = doc.sections.map((s) => `- ${s.title}: ${s.error ? `could not be made (${s.error})` : `${s.rows.length} rows`}`).join('\n');
    let lastErr: unknown;
    // A mail server that hiccups gets two more tries; then the files wait in their folder.
    for (const wait of [0, 2000, 10_000]) {
      if (wait) await new Promise((r) => setTimeout(r, wait));
      try {
        await transport.sendMail({
          from: smtp.from,
          to: spec.to.join(', '),
          subject: `${doc.title}: ${periodText(doc.from, doc.to)}`,
          text: `${doc.title}\n${periodText(doc.from, doc.to)}\n\n${summary}\n\nAttached: ${files.map((f) => f.name).join(', ')}\n`,
          attachments: files.map((f) => ({ filename: f.name, content: f.content, contentType: f.type })),
        });
        transport.close();
        return;
      } catch (err) {
        lastErr = err;
      }
    }
    transport.close();
    throw lastErr;
  }

  /** Keeps the newest `keep` runs of a report on disk. */
  private prune(name: string): void {
    const dir = join(this.outDir, name);
    const runsOnDisk = readdirSync(dir).sort();
    for (const old of runsOnDisk.slice(0, Math.max(0, runsOnDisk.length - this.o.config.keep))) rmSync(join(dir, old), { recursive: true, force: true });
  }
}

function dt64(t: number): string {
  return `toDateTime64('${new Date(t).toISOString().slice(0, 23).replace('T', ' ')}', 3, 'UTC')`;
}

function stamp(t: number): string {
  return new Date(t).toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'section';
}

/** ClickHouse's JSON quotes 64-bit integers: numbers again, for charts, sheets and sorting. */
function numeric(row: Record<string, unknown>, types: ReadonlyMap<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = typeof v === 'string' && isNumericType(types.get(k) ?? '') && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return out;
}
