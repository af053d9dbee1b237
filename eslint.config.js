import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const PRODUCT = ['cli/**/*.ts', 'shared/**/*.ts', 'responder/**/*.ts', 'sidecar/**/*.ts', 'webhook/**/*.ts', 'demo/**/*.ts', 'scripts/**/*.ts'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // One import statement per module (a type-only import beside a value import is fine).
      'no-duplicate-imports': ['error', { allowSeparateTypeImports: true }],
    },
  },
  // Type-aware rules on the product code (tests keep the syntactic set: their fixtures are deliberately loose).
  ...tseslint.configs.recommendedTypeChecked.map((config) => ({ ...config, files: PRODUCT })),
  {
    files: PRODUCT,
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Methods that implement a Promise-returning interface stay `async` without an await, so a throw
      // inside them is a rejection like everywhere else.
      '@typescript-eslint/require-await': 'off',
    },
  },
);
