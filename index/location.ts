/**
 * What a `--db` value (or SIGHTLINE_DATABASE_URL) names: a folder for the embedded SQLite catalog,
 * or a `postgres://` / `postgresql://` URL. Anything shaped like a URL (`scheme://…`) is a URL and
 * is never taken as a folder name: `--db postgres://…` used to create a folder called `postgres:`.
 *
 * Messages show a URL with its password replaced by `***` (redactUrl), never the password.
 */
import { resolve } from 'node:path';
import { IndexLocationError } from './errors.js';

export type DbLocation =
  | { kind: 'sqlite'; dir: string }
  | {
      kind: 'postgres';
      /** The URL as given, password included: for the driver only. */
      url: string;
      /** The URL with its password replaced: for messages and logs. */
      display: string;
    };

const URL_SHAPE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const POSTGRES_SCHEMES = new Set(['postgres:', 'postgresql:']);

/** `scheme://…`: a URL, whatever the scheme (a Windows path such as C:\x is not). */
export function looksLikeUrl(value: string): boolean {
  return URL_SHAPE.test(value);
}

/** The URL with any password replaced by `***`, also when the URL does not parse. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password !== '') u.password = '***';
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString();
  } catch {
    return value.replace(/(\/\/[^/:@]*:)[^@/]*@/, '$1***@').replace(/([?&]password=)[^&]*/i, '$1***');
  }
}

/**
 * Parses a `--db` value. `param` names where it came from (`--db`, SIGHTLINE_DATABASE_URL) in the
 * error of a URL this build cannot use: another scheme, no host, a malformed URL.
 */
export function parseDbLocation(value: string, param = '--db'): DbLocation {
  if (!looksLikeUrl(value)) return { kind: 'sqlite', dir: resolve(value) };
  const display = redactUrl(value);
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new IndexLocationError(`${param} '${display}' is not a valid URL; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE`);
  }
  if (!POSTGRES_SCHEMES.has(u.protocol)) {
    throw new IndexLocationError(`${param} '${display}': unsupported scheme '${u.protocol.slice(0, -1)}'; use a folder for the embedded SQLite catalog or postgres://HOST/DATABASE (postgresql:// also works)`);
  }
  const host = u.hostname !== '' ? u.hostname : (u.searchParams.get('host') ?? '');
  if (host === '') throw new IndexLocationError(`${param} '${display}' names no host; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE (or ?host=/socket/dir)`);
  if (u.port !== '' && !(Number(u.port) >= 1 && Number(u.port) <= 65535)) throw new IndexLocationError(`${param} '${display}': port must be in [1, 65535]`);
  return { kind: 'postgres', url: value, display };
}
