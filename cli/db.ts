/**
 * The `--db` value of the catalog commands (stats, duplicates, reindex): a folder or a
 * postgres:// URL, else SIGHTLINE_DATABASE_URL, else ./data. A malformed URL is a usage error
 * (exit 2) naming the value with its password hidden; it is never taken as a folder name.
 */
import { IndexLocationError, parseDbLocation, type DbLocation } from '../index/index.js';
import { CliError } from './errors.js';

export const DB_FLAG_HELP = 'index folder, or postgres://USER:PASSWORD@HOST:PORT/DATABASE (default: SIGHTLINE_DATABASE_URL, else ./data)';

export function dbLocation(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): DbLocation {
  const fromEnv = env['SIGHTLINE_DATABASE_URL'];
  const [value, name] = flag !== undefined ? [flag, '--db'] : fromEnv ? [fromEnv, 'SIGHTLINE_DATABASE_URL'] : ['./data', '--db'];
  try {
    return parseDbLocation(value, name);
  } catch (err) {
    if (err instanceof IndexLocationError) throw CliError.usage(err.message);
    throw err;
  }
}
