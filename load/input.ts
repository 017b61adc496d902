/** Files the user names to the load tester (traces, logs, reports). */
import { readFile } from "node:fs/promises";
import { FerryError } from "../shared/registry/errors.ts";

/** The text of `file`; a usage error naming it (as a `kind` of file, when given) when it cannot be read. */
export async function readUserFile(file: string, kind?: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    throw new FerryError("USAGE", `cannot read ${kind ? `${kind} ` : ""}${file}: ${(e as Error).message}`);
  }
}
