// The lint rules, each one a mistake this code can make. Type-aware (typescript-eslint reads each file's
// tsconfig), because an unawaited promise or an async signal handler is only visible through the types.
// Formatting is Prettier's (.prettierrc.json); nothing here is about layout.
import tseslint from "typescript-eslint";

export default tseslint.config(
  // ESLint skips node_modules by itself but reads no .gitignore: the built bundles (proa's, and the benchmark's
  // reference client that `npm run bench` writes) stay out here.
  { ignores: ["dist/**", "bench/dist/**"] },
  {
    files: ["**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: {
        // tsconfig.json covers the root and test/, bench/tsconfig.json bench/; demo/ has none of its own.
        projectService: { allowDefaultProject: ["demo/*.ts"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // An unawaited promise in a signal or exit path is a lost exit status. node:test's test() and describe()
      // return promises that the runner itself awaits; awaiting them in a file would serialise nothing new.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "describe", "it", "suite"] },
          ],
        },
      ],
      // An async function where a callback's return is ignored (process.on, child.on, setTimeout): its rejection
      // goes nowhere.
      "@typescript-eslint/no-misused-promises": "error",
      // A union that gains a member (a watch state, an outcome) must be handled wherever it is switched on. A
      // `default:` is a deliberate catch-all (http.ts's error codes, any string); the unions are switched on
      // without one, so a new member is still reported there.
      "@typescript-eslint/switch-exhaustiveness-check": ["error", { considerDefaultExhaustiveForUnions: true }],
      // `_` names what the syntax needs but the code does not use: a for-await that only drains, the key a
      // rest-destructure leaves out.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { ignoreRestSiblings: true, varsIgnorePattern: "^_$", argsIgnorePattern: "^_$" },
      ],
    },
  },
  {
    // The plain JavaScript (bench/floor/, demo/sidecar.mjs, test/helpers/) has no types to check: unused code only.
    files: ["**/*.js", "**/*.mjs", "**/*.cjs"],
    rules: {
      "no-unused-vars": ["error", { ignoreRestSiblings: true, varsIgnorePattern: "^_$", argsIgnorePattern: "^_$" }],
    },
  },
  {
    // Product code only: the tests and e2e helpers read JSON a real API server or kubelet wrote, where `any` is
    // the honest type of what comes back.
    files: ["*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "error" },
  },
);
