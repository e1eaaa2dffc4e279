/**
 * Runs `sightline` sub-commands in-process for tests (no child process, no dist/ build): a fresh
 * commander program with the given commands registered, stdout captured while it parses.
 */
import { Command } from 'commander';

/** A cli/commands/*.ts `register`: adds its sub-command to the program. */
type Register = (program: Command) => void;

/** Runs `args` (the sub-command first) through a program with `commands` registered; returns what it printed on stdout. */
export async function runCli(commands: readonly Register[], args: readonly string[]): Promise<string> {
  const program = new Command().exitOverride();
  for (const register of commands) register(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  // Our commands write strings; the test runner's own reports (binary frames) pass through.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    if (typeof chunk !== 'string') return write(chunk, ...rest);
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return out;
}
