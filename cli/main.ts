/**
 * `sightline` command line. Each sub-command lives in its own file under cli/commands/ and
 * registers itself on the program when it runs (cli/commands/index.ts); this file only wires them
 * together and maps errors to exit codes.
 */
import { Command } from 'commander';
import { registerCommands } from './commands/index.js';
import { CliError } from './errors.js';

const program = new Command();
program
  .name('sightline')
  .description('AlexNet image classification and similar-image search (tfjs training, ONNX export, onnxruntime serving)')
  .version('0.1.0')
  .showHelpAfterError();

try {
  await registerCommands(program, process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (err: unknown) {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`sightline: ${message}\n`);
  if (process.env['SIGHTLINE_DEBUG'] && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exitCode = err instanceof CliError ? err.exitCode : 1;
}
