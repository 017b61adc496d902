import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dirs = new Set<string>();
let hooked = false;

/** Removes every directory tmpDir() made in this process (test/setup/per-file.ts calls it after each file). */
export function removeAllTmpDirs(): void {
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }
  dirs.clear();
}

/** Creates a fresh directory under os.tmpdir(); it is removed when the process exits. */
export function tmpDir(prefix = "ferry-test-"): string {
  if (!hooked) {
    hooked = true;
    process.once("exit", removeAllTmpDirs);
  }
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

/** Removes a directory made by tmpDir() now rather than at exit. */
export function removeTmpDir(dir: string): void {
  dirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}
