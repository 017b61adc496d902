/** `ferry pull <ref> <oci:|oci-archive:|docker-archive:|rootfs:>` and `ferry push <oci:|oci-archive:|docker-archive:> <ref>`. */

import type { Command } from "commander";
import { extractLayers, type LayerInput } from "../../shared/archive/rootfs.ts";
import { now } from "../../shared/clock.ts";
import { FerryError } from "../../shared/registry/errors.ts";
import { parsePlatform } from "../../shared/registry/manifest.ts";
import { formatReference, type Reference } from "../../shared/registry/reference.ts";
import { planTransfer } from "../../shared/transfer/plan.ts";
import { RegistrySource } from "../../shared/transfer/registry-endpoints.ts";
import { makeClient } from "../client-options.ts";
import { parseLocation } from "../endpoints.ts";
import { usage } from "../usage.ts";
import { addTransferFlags, type TransferFlags, transfer } from "./copy.ts";

export function registerPullPush(program: Command): void {
  const pull = program
    .command("pull")
    .description(
      "pull an image into an OCI layout (directory or tar), a docker-archive tar, or an unpacked root filesystem",
    )
    .argument("<ref>", "image reference")
    .argument(
      "<dest>",
      "oci:<dir>[:tag], oci-archive:<file>[:tag], docker-archive:<file>[:name:tag] or rootfs:<dir> (a new or empty directory)",
    );
  addTransferFlags(pull, "src").action(async (ref: string, dest: string, flags: TransferFlags) => {
    const src = parseLocation(ref);
    const dst = parseLocation(dest, null);
    if (src.kind !== "registry")
      throw new FerryError("USAGE", `pull reads from a registry; for files use ferry copy`);
    if (dst.kind === "registry")
      throw new FerryError("USAGE", "pull writes files: use ferry copy between registries");
    if (dst.kind === "rootfs") {
      await pullRootfs(src.ref, dst.dir, flags);
      return;
    }
    await transfer([[src, dst]], flags);
  });

  const push = program
    .command("push")
    .description("push an OCI layout (directory or tar) or a docker-archive tar (docker save) to a registry")
    .argument("<src>", "oci:<dir>[:tag], oci-archive:<file>[:tag] or docker-archive:<file>[:name:tag]")
    .argument("<ref>", "destination image reference");
  addTransferFlags(push, "dest").action(async (srcText: string, ref: string, flags: TransferFlags) => {
    const src = parseLocation(srcText);
    const dst = parseLocation(ref, null);
    if (src.kind === "registry" || src.kind === "rootfs")
      throw new FerryError("USAGE", "push reads oci:, oci-archive: or docker-archive: files");
    if (dst.kind !== "registry") throw new FerryError("USAGE", "push writes to a registry");
    await transfer([[src, dst]], flags);
  });
}

/**
 * Unpacks one platform's layers, in order, verifying each layer's digest while it streams. All or
 * nothing (shared/archive/rootfs.ts): the tree is built next to `dir` and renamed into place once every
 * layer matched its digest; on any failure, or Ctrl-C / SIGTERM, `dir` stays as it was.
 */
async function pullRootfs(ref: Reference, dir: string, flags: TransferFlags) {
  const client = makeClient(flags, { src: ref.registry });
  const image = formatReference(ref);
  // a signal aborts the extraction, which then removes its temporary tree; a second one kills as usual
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) =>
    interrupt.abort(
      new FerryError("INTERRUPTED", `${image}: interrupted by ${signal}; ${dir} left as it was`),
    );
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const source = new RegistrySource(client, ref);
    const platforms = usage(() => (flags.platform ?? []).map(parsePlatform));
    const plan = await planTransfer(source, {
      singleImage: true,
      ...(platforms.length ? { platforms } : {}),
    });
    const m = plan.root.manifest;
    if (m.kind !== "manifest")
      throw new FerryError("UNSUPPORTED", `${image}: cannot unpack a ${m.mediaType}`);
    const t0 = now();
    const layers = m.layers.map((desc, i): LayerInput => {
      const what = `${image}: layer ${i + 1}/${m.layers.length} (${desc.digest})`;
      return { desc, what, open: () => client.getBlob(ref, desc, what) };
    });
    const summary = await extractLayers(dir, layers, { signal: interrupt.signal });
    const out = {
      image,
      digest: plan.root.raw.digest,
      dir,
      layerCount: layers.length,
      notes: plan.notes,
      ...summary,
      seconds: (now() - t0) / 1000,
    };
    if (flags.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    else if (!flags.quiet) {
      process.stdout.write(
        `${out.image} (${out.digest}) → ${dir}: ${layers.length} layer(s) unpacked\n${JSON.stringify(summary)}\n`,
      );
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await client.close();
  }
}
