import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/global.ts"],
    setupFiles: ["test/setup/per-file.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: a few files at a time keeps the registries responsive.
    maxWorkers: 2,
    reporters: process.env.CI ? ["default"] : ["default"],
  },
});
