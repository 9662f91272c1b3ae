import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import puppeteer from 'puppeteer-core';
import { baseType, periodText, reportHtml, type ReportDocument } from './document.js';

/** The PDF: the report's HTML printed by headless Chromium (A4, backgrounds, page numbers). */
export async function renderPdf(doc: ReportDocument, chromium: string): Promise<Buffer> {
  const profile = mkdtempSync(join(tmpdir(), 'noctua-pdf-'));
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    // Nothing leaves the machine: the page is self-contained, any request is refused.
    await page.setRequestInterception(true);
    page.on('request', (r) => (r.url().startsWith('data:') ? r.continue() : r.abort()));
    await page.setContent(reportHtml(doc), { waitUntil: 'load' });
    const pdf = await page.pdf({
      format: 'A4',
      printBackground: true,
      margin: { top: '14mm', bottom: '16mm', left: '12mm', right: '12mm' },
      displayHeaderFooter: true,
      headerTemplate: '<span></span>',
      footerTemplate: `<div style="font-size:8px;width:100%;text-align:center;color:#57606a">${doc.title.replace(/[<>&]/g, '')} · page <span class="pageNumber"></span> of <span class="totalPages"></span></div>`,
    });
    return Buffer.from(pdf);
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The XLSX: a summary sheet, then one sheet per section with every row, typed, filterable. */
export async function renderXlsx(doc: ReportDocument): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  wb.creator = 'Noctua';
  wb.created = new Date(doc.generatedAt);
  const summary = wb.addWorksheet('Report');
  summary.addRow([doc.title]).font = { bold: true, size: 14 };
  summary.addRow([periodText(doc.from, doc.to)]);
  summary.addRow([]);
  summary.addRow(['Section', 'Rows', 'Sheet']).font = { bold: true };
  const used = new Set<string>(['Report']);
  const sheetName = (title: string, i: number) => {
    // Excel: at most 31 characters, none of []:*?/\ and unique.
    let base = `${i + 1} ${title}`.replace(/[[\]:*?/\\]/g, ' ').slice(0, 31).trim();
    for (let k = 2; used.has(base); k++) base = `${base.slice(0, 28)} ${k}`;
    used.add(base);
    return base;
  };
  doc.sections.forEach((s, i) => {
    const name = sheetName(s.title, i);
    summary.addRow([s.title, s.error ? `error: ${s.error}` : s.rows.length, name]);
    const ws = wb.addWorksheet(name, { views: [{ state: 'frozen', ySplit: 1 }] });
    ws.columns = s.columns.map((c) => ({ header: c.name, key: c.name, width: Math.min(50, Math.max(10, c.name.length + 2)) }));
    ws.getRow(1).font = { bold: true };
    for (const r of s.rows) ws.addRow(s.columns.map((c) => excelValue(r[c.name], c.type)));
    if (s.columns.length > 0 && s.rows.length > 0) ws.autoFilter = { from: { row: 1, column: 1 }, to: { row: 1, column: s.columns.length } };
  });
  summary.getColumn(1).width = 60;
  return Buffer.from(await wb.xlsx.writeBuffer());
}

/** Dates become dates (the rows' numbers are numbers already: the reporter made them so). */
function excelValue(v: unknown, type: string): unknown {
  if (v === null || v === undefined) return null;
  if (/^Date/.test(baseType(type)) && typeof v === 'string') {
    const t = Date.parse(/Z|[+-]\d\d:?\d\d$/.test(v) ? v : `${v.replace(' ', 'T')}Z`);
    if (Number.isFinite(t)) return new Date(t);
  }
  return typeof v === 'object' ? JSON.stringify(v) : v;
}

/** One CSV (RFC 4180) per section. */
export function renderCsv(s: ReportDocument['sections'][number]): Buffer {
  const q = (v: unknown) => {
    const t = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
  };
  const lines = [s.columns.map((c) => q(c.name)).join(','), ...s.rows.map((r) => s.columns.map((c) => q(r[c.name])).join(','))];
  return Buffer.from(lines.join('\r\n') + '\r\n', 'utf8');
}

