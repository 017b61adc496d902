/**
 * The bulk rows of `npm run bench` (50 small images, the re-run when all are present, and the large local
 * migration): the same work for every tool — the same source images, the same destination repositories
 * and tags. skopeo sync with a YAML source writes `DEST/<last path component>`, so its destination is
 * `<host>/bulk` for the images `bulk/appN` to land where ferry puts them (`bulk/appN`): otherwise a
 * "re-run" would find nothing present and copy everything again. `ferry sync` gets a config naming the
 * source prefix (`<host>/bulk`: Enumerate lists the catalog under it, as a migration does) and the same
 * prefix at the destination. test/integration/bench/copy-bench.test.ts runs these command lines and checks
 * where the images land.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export const FERRY = join(import.meta.dirname, "..", "cli", "ferry.js");
export const SKOPEO = process.env.FERRY_SKOPEO || "/usr/bin/skopeo";

/** A tool's command line: the executable and its arguments. */
export type CommandLine = [string, string[]];

/** The repositories of the bulk images: `bulk/app0` … `bulk/app<n-1>` (or under `prefix`), tag `v1`. */
export function bulkRepositories(n: number, prefix = "bulk"): string[] {
  return [...Array(n).keys()].map((i) => `${prefix}/app${i}`);
}

/**
 * Each tool's command line copying the `n` bulk images (under `prefix`, "bulk" unless given) from `srcHost`
 * to `dstHost` (writing the list, config and YAML files they read into `dir`): ferry copy --from-file,
 * ferry sync (the bulk-migrate workflow run locally), skopeo sync, and skopeo copy once per image.
 */
export function bulkCommands(
  srcHost: string,
  dstHost: string,
  n: number,
  dir: string,
  prefix = "bulk",
): {
  ferry: CommandLine;
  "ferry sync": CommandLine;
  "skopeo sync": CommandLine;
  "skopeo per image": CommandLine[];
} {
  const repos = bulkRepositories(n, prefix);
  const list = join(dir, "list.txt");
  const config = join(dir, "sync.json");
  const yaml = join(dir, "sync.yaml");
  writeFileSync(list, repos.map((r) => `${srcHost}/${r}:v1 ${dstHost}/${r}:v1`).join("\n"));
  writeFileSync(
    config,
    JSON.stringify({ source: `${srcHost}/${prefix}`, destination: `${dstHost}/${prefix}` }),
  );
  writeFileSync(
    yaml,
    `${srcHost}:\n  tls-verify: false\n  images:\n${repos.map((r) => `    ${r}: [v1]`).join("\n")}\n`,
  );
  const skopeo = (...a: string[]): CommandLine => [SKOPEO, ["--insecure-policy", ...a]];
  return {
    ferry: [FERRY, ["copy", "--from-file", list, "--quiet"]],
    "ferry sync": [FERRY, ["sync", config, "--quiet"]],
    // --all and --preserve-digests: the images arrive as ferry copies them (digests intact), as for
    // `skopeo copy` below; without them skopeo sync rewrites the manifests and a re-run never matches.
    "skopeo sync": skopeo(
      "sync",
      "--all",
      "--preserve-digests",
      "--src",
      "yaml",
      "--dest",
      "docker",
      "--dest-tls-verify=false",
      yaml,
      `${dstHost}/${prefix}`,
    ),
    "skopeo per image": repos.map((r) => skopeoCopy(`${srcHost}/${r}:v1`, `${dstHost}/${r}:v1`)),
  };
}

/** skopeo copying one image between two plain-HTTP registries, every platform, digests preserved. */
export function skopeoCopy(from: string, to: string): CommandLine {
  return [
    SKOPEO,
    [
      "--insecure-policy",
      "copy",
      "--all",
      "--preserve-digests",
      "--src-tls-verify=false",
      "--dest-tls-verify=false",
      `docker://${from}`,
      `docker://${to}`,
    ],
  ];
}
