import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "node_modules/",
      "dist/",
      // The built @jobwire/client (scripts/build-client.mjs; .gitignore).
      "packages/client/dist/",
      "src/store/__generated__/",
      "src/graphql/__generated__/",
      "src/client/__generated__/",
      "bench/results/",
      // The peer runner bundled by bench/peers.ts (.gitignore).
      "bench/peers/dist/",
      "coverage/",
      // Scratch probes of a working session; never committed (.gitignore).
      ".probe/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: "readonly", console: "readonly", Buffer: "readonly", URL: "readonly" },
    },
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      eqeqeq: ["error", "always"],
    },
  },
);
