import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { ChartSpec } from './config.js';
import { baseType, isNumericType } from './document.js';

/**
 * A section's chart as SVG: vega-lite compiled to vega and rendered without a canvas (vega's 'none'
 * renderer), so no native module and no browser is needed for it.
 */
export async function chartSvg(chart: ChartSpec, rows: readonly Record<string, unknown>[], types: ReadonlyMap<string, string>): Promise<string> {
  const spec = (chart.vegaLite
    ? { ...chart.vegaLite, data: { values: rows } }
    : {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        width: 640,
        height: 220,
        data: { values: rows },
        mark: { type: chart.mark, tooltip: false },
        encoding: {
          x: { field: chart.x, type: fieldType(types.get(chart.x)), ...(fieldType(types.get(chart.x)) === 'nominal' && chart.mark === 'bar' && !chart.color ? { sort: '-y' } : {}), axis: { labelAngle: -40, labelLimit: 220 } },
          y: { field: chart.y, type: 'quantitative' },
          ...(chart.color ? { color: { field: chart.color, type: 'nominal', ...(chart.color === 'severity' ? { scale: SEVERITY_COLOURS } : {}) } } : {}),
        },
        config: { font: 'sans-serif', view: { stroke: null } },
      }) as vl.TopLevelSpec;
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The NOC's colours for severities, whatever order they come in: red is critical, never warning. */
const SEVERITY_COLOURS = { domain: ['critical', 'major', 'minor', 'warning', 'info'], range: ['#cf222e', '#e16f24', '#d4a72c', '#4f8fd6', '#8c959f'] };

/** ClickHouse type → vega-lite field type (days are categories: a week is seven bars, not a time axis). */
function fieldType(t: string | undefined): 'quantitative' | 'temporal' | 'ordinal' | 'nominal' {
  if (!t) return 'nominal';
  const base = baseType(t);
  if (isNumericType(base)) return 'quantitative';
  if (/^Date(32)?$/.test(base)) return 'ordinal';
  if (/^DateTime/.test(base)) return 'temporal';
  return 'nominal';
}
