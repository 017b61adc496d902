/** `ferry inspect <ref>`, `ferry tags <repo>`, `ferry catalog <registry>`. */
import type { Command } from "commander";
import type { RegistryClient } from "../../shared/registry/client.ts";
import { FerryError } from "../../shared/registry/errors.ts";
import {
  type Descriptor,
  formatPlatform,
  type Platform,
  parseManifest,
  parsePlatform,
  platformMatches,
  type RawManifest,
} from "../../shared/registry/manifest.ts";
import {
  formatReference,
  parseReference,
  parseRepository,
  type Reference,
} from "../../shared/registry/reference.ts";
import { formatBytes } from "../../shared/transfer/report.ts";
import { addConnectionFlags, type ConnectionFlags, makeClient } from "../client-options.ts";
import { writeText } from "../output.ts";
import { usage } from "../usage.ts";

interface InspectFlags extends ConnectionFlags {
  raw?: boolean;
  config?: boolean;
  json?: boolean;
  platform?: string;
}

export function registerInspect(program: Command): void {
  const inspect = program
    .command("inspect")
    .description("show an image's manifest, platforms, layers, sizes and config")
    .argument("<ref>", "image reference")
    .option("--raw", "print the manifest exactly as the registry sent it")
    .option("--config", "print the image config JSON (of one platform: see --platform)")
    .option("--json", "print the summary as JSON")
    .option(
      "--platform <os/arch[/variant]>",
      "of a multi-platform image, inspect this platform's image (its manifest with --raw, its config with --config)",
    );
  addConnectionFlags(inspect, "single").action(async (refText: string, flags: InspectFlags) => {
    const [parsed, platform] = usage(() => [
      parseReference(refText.replace(/^docker:\/\//, "")),
      flags.platform === undefined ? undefined : parsePlatform(flags.platform),
    ]);
    const client = makeClient(flags, { single: parsed.registry });
    try {
      let ref = parsed;
      let raw = await client.getManifest(ref);
      const top = parseManifest(raw.bytes, raw.mediaType, `manifest of ${formatReference(ref)}`);
      const index = top.kind === "index" ? top : undefined;
      if (index && (platform || flags.config)) {
        // --config needs one image: the platform asked for, else the user is told which ones there are
        const child = choosePlatform(formatReference(ref), index.manifests, platform);
        ref = { registry: ref.registry, repository: ref.repository, digest: child.digest };
        raw = await client.getManifest(ref);
      } else if (platform && !index) {
        await checkPlatform(client, ref, raw, platform);
      }
      if (flags.raw) {
        process.stdout.write(Buffer.from(raw.bytes));
        return;
      }
      const summary = await summarise(client, ref, raw, flags.config === true);
      if (flags.config) {
        if (summary.config === undefined)
          throw new FerryError(
            "UNSUPPORTED",
            `${summary.reference} (${summary.mediaType}) has no image config${summary.note ? ": Docker schema 1" : ""}`,
          );
        process.stdout.write(`${JSON.stringify(summary.config, null, 2)}\n`);
        return;
      }
      if (flags.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      else writeText(formatSummary(summary));
    } finally {
      await client.close();
    }
  });

  const tags = program
    .command("tags")
    .description("list the tags of a repository")
    .argument("<repo>", "host/repository");
  addConnectionFlags(tags, "single").action(async (repoText: string, flags: ConnectionFlags) => {
    const repo = usage(() => parseRepository(repoText.replace(/^docker:\/\//, "")));
    const client = makeClient(flags, { single: repo.registry });
    try {
      const all: string[] = [];
      for await (const t of client.tags(repo)) all.push(t);
      writeText(all.length ? `${all.join("\n")}\n` : "");
    } finally {
      await client.close();
    }
  });

  const catalog = program
    .command("catalog")
    .description("list the repositories of a registry")
    .argument("<registry>", "host[:port]");
  addConnectionFlags(catalog, "single").action(async (registry: string, flags: ConnectionFlags) => {
    if (!registry || registry.includes("/"))
      throw new FerryError("USAGE", `catalog takes a registry host, e.g. localhost:5000 (got "${registry}")`);
    const client = makeClient(flags, { single: registry });
    try {
      for await (const r of client.catalog(registry)) writeText(`${r}\n`);
    } finally {
      await client.close();
    }
  });
}

interface ImageSummary {
  reference: string;
  /** The registry's digest; for Docker schema 1, over the payload without its signatures. */
  digest: string;
  mediaType: string;
  /** What to know about this manifest's format (Docker schema 1). */
  note?: string;
  platforms?: { platform: string; digest: string; size: number }[];
  layers?: { digest: string; mediaType: string; size: number }[];
  size?: number;
  config?: unknown;
}

async function summarise(
  client: RegistryClient,
  ref: Reference,
  raw: RawManifest,
  withConfig: boolean,
): Promise<ImageSummary> {
  const m = parseManifest(raw.bytes, raw.mediaType, `manifest of ${formatReference(ref)}`);
  const base = { reference: formatReference(ref), digest: raw.digest, mediaType: raw.mediaType };
  if (m.kind === "index") {
    return {
      ...base,
      platforms: m.manifests.map((d: Descriptor) => ({
        platform: formatPlatform(d.platform),
        digest: d.digest,
        size: d.size,
      })),
    };
  }
  const layers = m.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size }));
  const summary: ImageSummary = {
    ...base,
    ...(m.kind === "schema1" ? { note: SCHEMA1_NOTE } : {}),
    layers,
    // schema 1 does not record layer sizes: no total rather than a wrong one
    ...(layers.every((l) => l.size >= 0) ? { size: layers.reduce((a, l) => a + l.size, 0) } : {}),
  };
  if (m.kind === "manifest") {
    const bytes = await client.readBlob(ref, m.config);
    const config = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
    summary.config = withConfig
      ? config
      : { architecture: config.architecture, os: config.os, created: config.created };
  }
  return summary;
}

/**
 * The child of an index for `platform`, or a usage error naming the platforms the index has: without
 * `--platform` (`--config` needs one image), when none matches, or when several do (linux/arm without
 * its variant, where the index has v6 and v7).
 */
function choosePlatform(image: string, children: Descriptor[], platform: Platform | undefined): Descriptor {
  const has = children.map((d) => formatPlatform(d.platform)).join(", ");
  if (!platform)
    throw new FerryError(
      "USAGE",
      `${image} is a multi-platform image (${has}): choose one with --platform os/arch[/variant]`,
    );
  const found = children.filter((d) => platformMatches(platform, d.platform));
  const digests = new Set(found.map((d) => d.digest));
  if (digests.size === 1) return found[0]!;
  const wanted = formatPlatform(platform);
  if (digests.size === 0)
    throw new FerryError("USAGE", `${image} has no ${wanted} image; its platforms: ${has}`);
  throw new FerryError(
    "USAGE",
    `${wanted} matches ${found.map((d) => formatPlatform(d.platform)).join(", ")} in ${image}: add the variant`,
  );
}

/** `--platform` on a single-platform image: its config must say that platform. */
async function checkPlatform(
  client: RegistryClient,
  ref: Reference,
  raw: RawManifest,
  platform: Platform,
): Promise<void> {
  const m = parseManifest(raw.bytes, raw.mediaType, `manifest of ${formatReference(ref)}`);
  if (m.kind !== "manifest") return; // schema 1 records no platform ferry can trust
  const config = JSON.parse((await client.readBlob(ref, m.config)).toString("utf8")) as {
    os?: string;
    architecture?: string;
    variant?: string;
  };
  const actual =
    config.os && config.architecture
      ? {
          os: config.os,
          architecture: config.architecture,
          ...(config.variant ? { variant: config.variant } : {}),
        }
      : undefined;
  if (!platformMatches(platform, actual))
    throw new FerryError(
      "USAGE",
      `${formatReference(ref)} is a single-platform image for ${formatPlatform(actual)}, not ${formatPlatform(platform)}`,
    );
}

const SCHEMA1_NOTE =
  "Docker schema 1 (deprecated): the digest is over the payload without its signatures, which the registry renews on every read; ferry cannot copy this image";

function formatSummary(s: ImageSummary): string {
  const lines = [`${s.reference}`, `  digest     ${s.digest}`, `  mediaType  ${s.mediaType}`];
  if (s.note) lines.push(`  note       ${s.note}`);
  if (s.platforms) for (const p of s.platforms) lines.push(`  ${p.platform.padEnd(20)} ${p.digest}`);
  if (s.layers) {
    const c = s.config as { os?: string; architecture?: string } | undefined;
    if (c?.os) lines.push(`  platform   ${c.os}/${c.architecture}`);
    const size = s.size === undefined ? "unknown" : formatBytes(s.size);
    lines.push(`  size       ${size} in ${s.layers.length} layer(s)`);
    for (const l of s.layers)
      lines.push(`    ${l.digest}  ${(l.size < 0 ? "?" : formatBytes(l.size)).padStart(10)}  ${l.mediaType}`);
  }
  return `${lines.join("\n")}\n`;
}
