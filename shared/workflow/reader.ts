/** The exact-length reader lives with the registry client; the workflow steps use the same one. */
export { ExactReader } from "../registry/exact-reader.ts";
