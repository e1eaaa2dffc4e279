/**
 * `sightline serve`: the HTTP server (classification, search, indexing jobs, Open Inference
 * Protocol, web page). Also home of the flags and runtime opening that `index` and `search` share.
 */
import type { Command } from 'commander';
import pino from 'pino';
import type { Logger } from 'pino';
import { IndexError } from '../../index/index.js';
import { ModelError, RegistryError } from '../../model/index.js';
import { ConfigError, createRuntime, loadConfig, startServer } from '../../server/index.js';
import type { Config, ConfigInput, Runtime } from '../../server/index.js';
import { CliError } from '../errors.js';
import { pullIfAsked } from './models.js';

export interface RuntimeFlags {
  model?: string;
  pull?: boolean;
  codes?: string;
  db?: string;
  device?: string;
  threads?: string;
}

export function addRuntimeFlags(cmd: Command): Command {
  return cmd
    .option('--model <file|name>', 'classifier ONNX with a Sightline contract, or a registry name such as alexnet-imagenet (default: model/default/sightline-fmnist.onnx; env SIGHTLINE_MODEL)')
    .option('--pull', 'pull the --model (or SIGHTLINE_MODEL) registry name first if it is not pulled yet')
    .option('--codes <file>', "codes model, embedding → binary code (default: a registry model's own, else model/default/codes-128.onnx; env SIGHTLINE_CODES)")
    .option('--db <dir|url>', 'database folder, or a postgres://USER:PASSWORD@HOST:PORT/DATABASE catalog (default: ./data; env SIGHTLINE_DATA, SIGHTLINE_DATABASE_URL)')
    .option('--device <name>', 'execution provider: auto, cpu, cuda or webgpu (default auto; env SIGHTLINE_DEVICE)')
    .option('--threads <n>', 'onnxruntime intra-op threads, 0 = the default, 2 (env SIGHTLINE_THREADS)');
}

/** The flag of each config field a command sets, so a bad value is named as the user typed it. */
const FLAG_NAMES: Partial<Record<keyof ConfigInput, string>> = {
  modelPath: '--model',
  codesPath: '--codes',
  dataDir: '--db',
  device: '--device',
  threads: '--threads',
  port: '--port',
  host: '--host',
  jobConcurrency: '--concurrency',
};

/** Flags over environment over defaults; a bad value is a usage error (exit 2), not a crash. */
export function configFromFlags(flags: RuntimeFlags, extra: Partial<Record<keyof ConfigInput, unknown>> = {}): Config {
  try {
    return loadConfig({ modelPath: flags.model, codesPath: flags.codes, dataDir: flags.db, device: flags.device, threads: flags.threads, ...extra }, process.env, FLAG_NAMES);
  } catch (err) {
    if (err instanceof ConfigError) {
      // A registry name that exists but is not pulled (or fails to load) is a failure, not a typo.
      const failed = err.cause instanceof RegistryError && err.cause.code !== 'registry_unknown_model';
      throw failed ? CliError.failure(err.message) : CliError.usage(err.message);
    }
    throw err;
  }
}

/** Model, codes and index errors at start-up are the user's to fix: print them without a stack. */
export function asCliError(err: unknown): unknown {
  if (err instanceof ModelError || err instanceof IndexError || err instanceof ConfigError) return CliError.failure(err.message);
  return err;
}

export async function openRuntime(config: Config, logger: Logger, opts: { readOnly?: boolean } = {}): Promise<Runtime> {
  try {
    return await createRuntime(config, logger, opts);
  } catch (err) {
    throw asCliError(err);
  }
}

/** Warnings and errors as plain lines on stderr (`sightline: warning: …`), for the batch commands: never JSON, never stdout. */
export function terminalLogger(verbose: boolean): Logger {
  const line = { write: (json: string): void => void process.stderr.write(plainLogLine(json)) };
  return pino({ level: verbose ? 'info' : 'warn', base: undefined, timestamp: false }, line);
}

/** A pino JSON line as `sightline: LEVEL: message` (levels per pino: 30 info, 40 warn, 50 error). */
export function plainLogLine(json: string): string {
  let o: { level?: number; msg?: string };
  try {
    o = JSON.parse(json) as { level?: number; msg?: string };
  } catch {
    return json;
  }
  const level = (o.level ?? 30) >= 50 ? 'error' : (o.level ?? 30) >= 40 ? 'warning' : 'info';
  return `sightline: ${level}: ${o.msg ?? ''}\n`;
}

interface ServeFlags extends RuntimeFlags {
  port?: string;
  host?: string;
  demo: boolean;
}

export function register(program: Command): void {
  addRuntimeFlags(
    program
      .command('serve')
      .description('start the HTTP server: /v1 classify, embed, search and images, /v2 Open Inference Protocol, /metrics and the web page at /')
      .option('--port <n>', 'TCP port (default 8080; env SIGHTLINE_PORT or PORT)')
      .option('--host <addr>', 'interface to bind (default 0.0.0.0; env SIGHTLINE_HOST)')
      .option('--no-demo', 'do not index the bundled demo gallery into an empty database'),
  ).action(async (flags: ServeFlags) => {
    await pullIfAsked(flags);
    // --no-demo only when given: otherwise SIGHTLINE_DEMO (or the default) decides.
    const config = configFromFlags(flags, { port: flags.port, host: flags.host, demo: flags.demo === false ? false : undefined });
    const starting = startServer(config);
    let signals = 0;
    // Listening before the server starts: a SIGTERM that arrives while it starts (or right after
    // "listening") still shuts it down cleanly, instead of killing the process mid-write.
    const stop = (signal: string): void => {
      signals++;
      if (signals > 1) {
        process.stderr.write(`sightline: second ${signal}, exiting without waiting\n`);
        process.exit(1);
      }
      void starting.then((server) => server.close()).then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`sightline: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    try {
      await starting;
    } catch (err) {
      throw asCliError(err);
    }
  });
}
