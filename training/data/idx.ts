/** IDX files (the MNIST / Fashion-MNIST container): big-endian header, then raw uint8 data. */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function parseIdx(buf: Uint8Array, file = 'IDX data'): IdxArray {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4 || view.getUint16(0) !== 0) throw new Error(`${file}: not an IDX file (bad magic)`);
  const type = view.getUint8(2);
  if (type !== 0x08) throw new Error(`${file}: only unsigned-byte IDX data is supported, got type 0x${type.toString(16)}`);
  const rank = view.getUint8(3);
  if (buf.length < 4 + 4 * rank) throw new Error(`${file}: truncated (header declares ${rank} dimensions, found ${buf.length} bytes)`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i));
  const offset = 4 + 4 * rank;
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length < offset + size) throw new Error(`${file}: truncated (expected ${size} bytes of data, found ${buf.length - offset})`);
  return { dims, data: buf.subarray(offset, offset + size) };
}

/** Reads a .gz or plain IDX file. */
export async function readIdx(path: string): Promise<IdxArray> {
  const raw = await readFile(path);
  const bytes = path.endsWith('.gz') ? gunzipSync(raw) : raw;
  return parseIdx(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
}
