import { afterAll } from "vitest";
import { removeAllTmpDirs } from "../helpers/tmp.ts";

// Vitest workers do not run process exit hooks: remove each test file's temporary directories when it ends.
afterAll(() => removeAllTmpDirs());
