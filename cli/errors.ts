/** An error meant for the terminal: its message is printed as is, without a stack. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(message: string, readonly exitCode = 2) {
    super(message);
  }
}
