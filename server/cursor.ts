/**
 * Opaque paging cursors: what a page ended at, base64url-encoded with the name of the listing it
 * belongs to, so clients treat it as a token (the encoding may change) and a cursor of one listing
 * handed to another is refused instead of silently starting somewhere else.
 */

export function encodeCursor(listing: string, position: number): string {
  return Buffer.from(`${listing}:${position}`, 'utf8').toString('base64url');
}

/** The position a cursor of `listing` stands for, or undefined when it is not one. */
export function decodeCursor(listing: string, cursor: string): number | undefined {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) return undefined;
  const m = /^([a-z]+):(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (m === null || m[1] !== listing) return undefined;
  return Number(m[2]);
}
