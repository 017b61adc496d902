/** `ferry inspect <ref>`, `ferry tags <repo>`, `ferry catalog <registry>`. */
import type { Command } from "commander";
import type { RegistryClient } from "../../shared/registry/client.ts";
import { FerryError } from "../../shared/registry/errors.ts";
import {
  type Descriptor,
  formatPlatform,
  parseManifest,
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

interface InspectFlags extends ConnectionFlags {
  raw?: boolean;
  config?: boolean;
  json?: boolean;
}

export function registerInspect(program: Command): void {
  const inspect = program
    .command("inspect")
    .description("show an image's manifest, platforms, layers, sizes and config")
    .argument("<ref>", "image reference")
    .option("--raw", "print the manifest exactly as the registry sent it")
    .option("--config", "print the image config JSON")
    .option("--json", "print the summary as JSON");
  addConnectionFlags(inspect, "single").action(async (refText: string, flags: InspectFlags) => {
    const ref = parseReference(refText.replace(/^docker:\/\//, ""));
    const client = makeClient(flags, { single: ref.registry });
    try {
      const raw = await client.getManifest(ref);
      if (flags.raw) {
        process.stdout.write(Buffer.from(raw.bytes));
        return;
      }
      const summary = await summarise(client, ref, raw, flags.config === true);
      if (flags.config) {
        process.stdout.write(`${JSON.stringify(summary.config ?? null, null, 2)}\n`);
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
  addConnectionFlags(tags, "single").action(
    async (repoText: string, flags: ConnectionFlags & { json?: boolean }) => {
      const repo = parseRepository(repoText.replace(/^docker:\/\//, ""));
      const client = makeClient(flags, { single: repo.registry });
      try {
        const all: string[] = [];
        for await (const t of client.tags(repo)) all.push(t);
        writeText(all.length ? `${all.join("\n")}\n` : "");
      } finally {
        await client.close();
      }
    },
  );

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
