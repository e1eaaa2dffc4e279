import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const SURFACES = { regex: '^(\\.\\./)+(model|training|index|server)/(?!index\\.js$).+', message: "import the folder's surface (<folder>/index.js), not a module inside it" };
const NO_TESTS = { regex: '^(\\.\\./)+tests/', message: 'only tests import tests/ (test models shared with bench/ live in testing/)' };
const NO_TESTING = { regex: '^(\\.\\./)+testing/', message: 'production code does not import the test models of testing/' };

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'server/public/**', 'data/**', 'bin/**', 'scripts/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'before', 'after', 'beforeEach', 'afterEach', 'suite'] }] }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Each of model/, training/, index/ and server/ exposes its surface in its index.ts: code outside a
  // folder imports that file, never a module inside (tests/ may: they test the inside). Only tests/
  // and bench/ use the test models of testing/; nothing imports tests/.
  { files: ['**/*.ts'], ignores: ['tests/**'], rules: { 'no-restricted-imports': ['error', { patterns: [SURFACES, NO_TESTS] }] } },
  { files: ['cli/**/*.ts', 'model/**/*.ts', 'training/**/*.ts', 'index/**/*.ts', 'server/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [SURFACES, NO_TESTS, NO_TESTING] }] } },
  { files: ['tests/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  // CommonJS preloads for `node --require` (tests/cli/fixtures).
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', process: 'readonly', module: 'writable' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
