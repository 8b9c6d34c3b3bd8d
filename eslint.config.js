// ESLint flat config: the recommended correctness rules (ESLint's and typescript-eslint's
// type-checked set) plus the module boundaries of STYLE.md. No stylistic rules: there is no
// formatter step. `npm run lint`; generated code (proto/gen) is never linted.
// @ts-check
import { existsSync } from "node:fs";
import { join } from "node:path";
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

/** no-restricted-imports patterns match the import specifier as written (relative paths). */
const grpc = { regex: "^@grpc/", message: "gRPC stays in broker/server (STYLE.md): it maps wire types to core types." };
const generated = { regex: "(^|/)proto/gen(/|$)", message: "generated code stays in broker/server (STYLE.md): it maps wire types to core types." };
const server = { regex: "(^|/)server/", message: "broker/server depends on this package, never the other way round." };

// A boundary glob over a folder that has moved would silently check nothing: fail instead.
for (const dir of ["broker/core", "broker/store", "broker/index.ts", "loadgen"]) {
  if (!existsSync(join(import.meta.dirname, dir))) throw new Error(`eslint.config.js: ${dir} is gone; update the module boundaries below`);
}

export default defineConfig(
  { ignores: ["proto/gen/**", "dist/**", "build/**", "node_modules/**", "reports/**", ".tmp/**"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // Async methods implement Promise-returning interfaces (Store, Driver) and turn a throw into a rejection.
      "@typescript-eslint/require-await": "off",
      // Test kits and e2e clients pass (client, client.method) and call the method with its receiver.
      "@typescript-eslint/unbound-method": "off",
      // Under noUncheckedIndexedAccess an `x[i]!` states "i is in range" even where the callee accepts undefined.
      "@typescript-eslint/no-unnecessary-type-assertion": "off",
      // Unused parameters named `_x` are kept on purpose (interface signatures, destructuring).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" }],
      // Passing a caught value on (`Promise.reject(err)` in a catch) is not inventing a non-Error reason.
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
    },
  },
  {
    // Tests: vitest's asymmetric matchers (expect.stringContaining, …) are typed `any`, and the
    // dynamic-client tests drive proto-loader clients, which have no static types.
    files: ["**/*.test.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-function-type": "off",
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
  {
    // Plain Node scripts: not in a tsconfig (checkJs would need JSDoc types throughout), so no type-aware rules.
    files: ["**/*.mjs", "**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: { process: "readonly", console: "readonly", Buffer: "readonly", URL: "readonly", setTimeout: "readonly", clearTimeout: "readonly" },
    },
  },

  // ---- Module boundaries (STYLE.md "Doors"). test/boundaries.test.ts checks the first two as well.
  {
    files: ["broker/core/**"],
    rules: { "no-restricted-imports": ["error", { patterns: [grpc, generated, server] }] },
  },
  {
    files: ["broker/store/**"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [grpc, generated, server] }],
      // The store owns its record types (broker/store/records.ts) and errors; a separate rule name
      // so this pattern does not replace the one above.
      "@typescript-eslint/no-restricted-imports": [
        "error",
        { patterns: [{ regex: "(^|/)core/", message: "broker/store may not import broker/core: stores depend only on their own types." }] },
      ],
    },
  },
  {
    files: ["loadgen/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { regex: "(^|/)broker/(?!index\\.js$)", message: "loadgen enters the broker only through broker/index.js." },
          ],
        },
      ],
    },
  },
);
