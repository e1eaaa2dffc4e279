/**
 * Flat parameter layout: every layer's kernel then bias, in preset order, packed into one
 * Float32Array (backed by a SharedArrayBuffer during training so that worker threads read the
 * same weights and each update a disjoint slice of them).
 */
import type { Preset, NamedWeights } from '../model/index.js';
import { kernelShape, layerShapes } from '../model/index.js';

export interface ParamEntry {
  name: string;
  wShape: number[];
  wOffset: number;
  wSize: number;
  bOffset: number;
  bSize: number;
}

export interface ParamLayout {
  entries: ParamEntry[];
  total: number;
}

export function paramLayout(preset: Preset): ParamLayout {
  let offset = 0;
  const entries: ParamEntry[] = [];
  for (const ls of layerShapes(preset)) {
    const { layer } = ls;
    const wShape = kernelShape(ls);
    const wSize = wShape.reduce((a, b) => a * b, 1);
    const bSize = layer.kind === 'conv' ? layer.filters : layer.units;
    entries.push({ name: layer.name, wShape, wOffset: offset, wSize, bOffset: offset + wSize, bSize });
    offset += wSize + bSize;
  }
  return { entries, total: offset };
}

export function sharedFloats(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * 4));
}

export function packWeights(layout: ParamLayout, weights: NamedWeights, out: Float32Array): void {
  for (const e of layout.entries) {
    const lw = weights.get(e.name);
    if (!lw) throw new Error(`weights for layer '${e.name}' are missing`);
    if (lw.w.length !== e.wSize || lw.b.length !== e.bSize) {
      throw new Error(`layer '${e.name}': expected ${e.wSize}+${e.bSize} values, got ${lw.w.length}+${lw.b.length}`);
    }
    out.set(lw.w, e.wOffset);
    out.set(lw.b, e.bOffset);
  }
}

/** Copies out of the (shared) flat array into the exporter's hand-off format. */
export function unpackWeights(layout: ParamLayout, flat: Float32Array): NamedWeights {
  const out: NamedWeights = new Map();
  for (const e of layout.entries) {
    out.set(e.name, {
      w: flat.slice(e.wOffset, e.wOffset + e.wSize),
      wShape: [...e.wShape],
      b: flat.slice(e.bOffset, e.bOffset + e.bSize),
    });
  }
  return out;
}
