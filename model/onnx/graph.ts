/**
 * Small graph-editing helpers for decoded ModelProtos. protobufjs puts frozen empty arrays on the
 * prototype for repeated fields, so edits always assign fresh arrays instead of pushing in place.
 */
import { OnnxError } from './errors.js';
import type { IGraphProto, INodeProto, ITensorProto } from './proto.js';
import { getAttr, int64Values } from './proto.js';

export function nodesOf(g: IGraphProto): INodeProto[] {
  return g.node ?? [];
}

export function producerOf(g: IGraphProto, tensor: string): INodeProto | undefined {
  return nodesOf(g).find((n) => (n.output ?? []).includes(tensor));
}

export function consumersOf(g: IGraphProto, tensor: string): INodeProto[] {
  return nodesOf(g).filter((n) => (n.input ?? []).includes(tensor));
}

export function isGraphOutput(g: IGraphProto, tensor: string): boolean {
  return (g.output ?? []).some((o) => o.name === tensor);
}

export function initializerOf(g: IGraphProto, name: string): ITensorProto | undefined {
  return (g.initializer ?? []).find((t) => t.name === name);
}

/** Makes every reader of `from` (nodes and graph outputs) read `to` instead. */
export function rewire(g: IGraphProto, from: string, to: string): void {
  for (const n of nodesOf(g)) n.input = (n.input ?? []).map((i) => (i === from ? to : i));
  for (const o of g.output ?? []) if (o.name === from) o.name = to;
}

export function removeNodes(g: IGraphProto, drop: ReadonlySet<INodeProto>): void {
  g.node = nodesOf(g).filter((n) => !drop.has(n));
}

/** A constant tensor feeding `name`: an initializer or a Constant node, seen through Cast/Identity. */
export function constantTensor(g: IGraphProto, name: string, depth = 0): ITensorProto | undefined {
  const init = initializerOf(g, name);
  if (init) return init;
  const p = producerOf(g, name);
  if (!p || depth > 4) return undefined;
  if (p.opType === 'Constant') return getAttr(p, 'value')?.t ?? undefined;
  if (p.opType === 'Cast' || p.opType === 'Identity') return constantTensor(g, p.input?.[0] ?? '', depth + 1);
  return undefined;
}

export function constantInts(g: IGraphProto, name: string): number[] | undefined {
  const t = constantTensor(g, name);
  return t ? int64Values(t) : undefined;
}

/**
 * Drops Dropout nodes (an identity at inference) by rewiring their readers to the Dropout's input.
 * Returns how many were removed. A mask output that something reads cannot be dropped.
 */
export function stripDropout(g: IGraphProto): number {
  const drops = new Set(nodesOf(g).filter((n) => n.opType === 'Dropout'));
  for (const d of drops) {
    const [out, mask] = d.output ?? [];
    const inp = d.input?.[0];
    if (!out || !inp) continue;
    if (mask && (consumersOf(g, mask).length > 0 || isGraphOutput(g, mask))) {
      throw new OnnxError('onnx_unsupported_graph', `Dropout '${d.name ?? out}' has its mask output '${mask}' in use; cannot remove it`);
    }
    rewire(g, out, inp);
  }
  removeNodes(g, drops);
  return drops.size;
}
