import { Type, type Static } from '@sinclair/typebox';
import { validate, ConfigError } from '../core/config.js';
import { Cron } from 'croner';
import { parseDuration } from '../processors/window.js';

/**
 * The `reports:` configuration section: scheduled analytic reports (the Monday report). Each report is
 * a list of sections, each an SQL query over Noctua's tables for the report's period, drawn as a chart
 * (vega-lite) and a table; rendered to PDF (headless Chromium), XLSX and CSV, written under `outDir`
 * and e-mailed when it has recipients.
 */

const Chart = Type.Object(
  {
    mark: Type.Union([Type.Literal('bar'), Type.Literal('line'), Type.Literal('area'), Type.Literal('point')], { default: 'bar' }),
    x: Type.String({ minLength: 1, description: 'column on the x axis' }),
    y: Type.String({ minLength: 1, description: 'numeric column on the y axis' }),
    color: Type.Optional(Type.String({ minLength: 1, description: 'column that colours (and stacks) the marks' })),
    /** A whole vega-lite spec instead (its data is the section's rows). */
    vegaLite: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type ChartSpec = Static<typeof Chart>;

const Section = Type.Object(
  {
    title: Type.String({ minLength: 1 }),
    /** Read-only SQL; `{from}` and `{to}` stand for the period's bounds (DateTime64, UTC). */
    sql: Type.String({ minLength: 1 }),
    chart: Type.Optional(Chart),
    /** Rows shown in the PDF's table (the XLSX and CSV have them all). */
    tableRows: Type.Integer({ minimum: 0, maximum: 1000, default: 20 }),
    note: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type SectionSpec = Static<typeof Section>;

const Format = Type.Union([Type.Literal('pdf'), Type.Literal('xlsx'), Type.Literal('csv')]);
export type ReportFormat = Static<typeof Format>;

const Report = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'lower-case letters, digits and dashes' }),
    title: Type.String({ minLength: 1 }),
    /** When it runs (cron, 5 or 6 fields); unset: only on demand. */
    cron: Type.Optional(Type.String({ minLength: 9 })),
    timezone: Type.String({ default: 'UTC' }),
    /** The period it covers, ending when it runs: 7d, 24h, 30d. */
    range: Type.String({ default: '7d' }),
    to: Type.Array(Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$' }), { default: [] }),
    formats: Type.Array(Format, { default: ['pdf', 'xlsx'], minItems: 1 }),
    sections: Type.Array(Section, { minItems: 1 }),
  },
  { additionalProperties: false },
);
export type ReportSpec = Static<typeof Report>;

export const ReportsConfigSchema = Type.Object({
  /** Where reports are written: outDir/<report>/<run>/ (relative to dataDir unless absolute). */
  outDir: Type.String({ default: 'reports' }),
  /** Runs kept per report on disk (older ones are removed). */
  keep: Type.Integer({ minimum: 1, default: 20 }),
  chromium: Type.String({ default: '/usr/bin/chromium', description: 'the headless browser that prints PDFs' }),
  smtp: Type.Optional(
    Type.Object(
      {
        host: Type.String({ minLength: 1 }),
        port: Type.Integer({ minimum: 1, maximum: 65535, default: 587 }),
        /** TLS from the start (465); otherwise STARTTLS when the server offers it. */
        secure: Type.Boolean({ default: false }),
        user: Type.Optional(Type.String()),
        password: Type.Optional(Type.String()),
        from: Type.String({ minLength: 3 }),
        timeoutMs: Type.Integer({ minimum: 100, default: 30_000 }),
      },
      { additionalProperties: false },
    ),
  ),
  /** Reports beside the built-in `network-weekly` (a report of the same name replaces it). */
  list: Type.Array(Report, { default: [] }),
});
export type ReportsConfig = Static<typeof ReportsConfigSchema>;

/** Validates `cfg.reports` (throws ConfigError naming the field); periods and schedules too. */
export function parseReportsConfig(raw: unknown): ReportsConfig {
  const c = validate(ReportsConfigSchema, raw ?? {}, 'config.reports');
  const problems: string[] = [];
  const names = new Set<string>();
  c.list.forEach((r, i) => {
    if (names.has(r.name)) problems.push(`config.reports.list.${i}.name: ${r.name} is there twice`);
    names.add(r.name);
    try {
      parseDuration(r.range, `config.reports.list.${i}.range`);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (r.cron) {
      try {
        new Cron(r.cron, { paused: true, timezone: r.timezone }).stop();
      } catch (err) {
        problems.push(`config.reports.list.${i}.cron: ${(err as Error).message}`);
      }
    }
    if (r.to.length > 0 && !c.smtp) problems.push(`config.reports.list.${i}.to: recipients need reports.smtp (host, from)`);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return c;
}
