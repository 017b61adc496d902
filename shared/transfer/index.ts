/** shared/transfer — the engine that copies images between sources and sinks. */
export * from "./engine.ts";
export * from "./plan.ts";
export * from "./registry-endpoints.ts";
export * from "./report.ts";
export type * from "./types.ts";
