/**
 * Which network addresses ferry may connect to. A CLI on a laptop talks to whatever the user names; a
 * service (the Lambda functions, behind an API anyone with `execute-api:Invoke` may call) must not become
 * a way into its own network: the Lambda runtime API on loopback, instance metadata on link-local, VPC
 * neighbours on private ranges. With `publicOnly`, every connection is checked on the address it actually
 * goes to — after DNS resolution, at connect time, so a name that resolves to a public address when
 * validated and to 169.254.169.254 when used (DNS rebinding) is still refused — and so are redirect
 * targets and token realms, which reach the network through the same connector. Through a forward
 * proxy (proxy.ts) the connection goes to the proxy and the proxy resolves the name: checkProxiedTarget
 * says what is still checked then.
 */
import { lookup as dnsLookup } from "node:dns";
import { BlockList, isIP } from "node:net";
import type { buildConnector } from "undici";
import { FerryError } from "../errors.ts";

export interface NetworkPolicy {
  /** Refuse loopback, link-local, private, unique-local, shared (CGNAT), multicast and reserved addresses. */
  readonly publicOnly: boolean;
  /**
   * Hosts (`name` or `name:port`, as registries are written) that may resolve to private addresses:
   * a registry the deployment explicitly declared as private.
   */
  readonly allowPrivateHosts?: readonly string[];
}

/** A connection refused by the network policy before it was made. Never retried. */
export class AddressNotAllowedError extends FerryError {
  readonly host: string;
  readonly address: string;
  constructor(host: string, address: string, kind: string) {
    super(
      "ADDRESS_NOT_ALLOWED",
      `refusing to connect to ${host === address ? address : `${host} (${address})`}: a ${kind} address, ` +
        "and this deployment allows only public registries (declare a private registry explicitly to reach it)",
    );
    this.name = "AddressNotAllowedError";
    this.host = host;
    this.address = address;
  }
}

/** Address ranges no public registry lives in, each with the word an error uses for it. */
const RANGES: readonly [string, number, "ipv4" | "ipv6", string][] = [
  ["0.0.0.0", 8, "ipv4", "reserved"],
  ["10.0.0.0", 8, "ipv4", "private"],
  ["100.64.0.0", 10, "ipv4", "shared (CGNAT)"],
  ["127.0.0.0", 8, "ipv4", "loopback"],
  ["169.254.0.0", 16, "ipv4", "link-local"],
  ["172.16.0.0", 12, "ipv4", "private"],
  ["192.0.0.0", 24, "ipv4", "reserved"],
  ["192.168.0.0", 16, "ipv4", "private"],
  ["198.18.0.0", 15, "ipv4", "reserved"],
  ["224.0.0.0", 4, "ipv4", "multicast"],
  ["240.0.0.0", 4, "ipv4", "reserved"],
  ["::", 128, "ipv6", "unspecified"],
  ["::1", 128, "ipv6", "loopback"],
  ["fc00::", 7, "ipv6", "unique-local"],
  ["fe80::", 10, "ipv6", "link-local"],
  ["fec0::", 10, "ipv6", "site-local"],
  ["ff00::", 8, "ipv6", "multicast"],
];

/**
 * The ranges as BlockLists, built on first use: a policy that allows every address (the CLI's) never
 * checks one, and every ferry command would otherwise load Node's BlockList and build 17 lists at start.
 */
let lists: { list: BlockList; family: string; kind: string }[] | undefined;
const rangeLists = () =>
  (lists ??= RANGES.map(([net, prefix, family, kind]) => {
    const list = new BlockList();
    list.addSubnet(net, prefix, family);
    return { list, family, kind };
  }));

/**
 * The kind of non-public range `address` falls in, or undefined for a public address. IPv6 forms that
 * embed an IPv4 address (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by
 * the IPv4 address inside.
 */
export function nonPublicKind(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return "malformed";
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4) return nonPublicKind(v4);
  }
  const type = family === 4 ? "ipv4" : "ipv6";
  for (const { list, family: f, kind } of rangeLists())
    if (f === type && list.check(address, type)) return kind;
  return undefined;
}

function embeddedIpv4(address: string): string | undefined {
  const words = expandIpv6(address);
  if (!words) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number) => words.slice(from, to).every((w) => w === 0);
  if (zero(0, 5) && words[5] === 0xffff) return v4(words[6]!, words[7]!); // ::ffff:a.b.c.d
  if (zero(0, 6) && (words[6] !== 0 || words[7]! > 1)) return v4(words[6]!, words[7]!); // ::a.b.c.d (deprecated)
  if (words[0] === 0x64 && words[1] === 0xff9b && zero(2, 6)) return v4(words[6]!, words[7]!); // NAT64
  if (words[0] === 0x2002) return v4(words[1]!, words[2]!); // 6to4
  return undefined;
}

/** Eight 16-bit words of an IPv6 address (a trailing dotted IPv4 part included), or undefined. */
function expandIpv6(address: string): number[] | undefined {
  let text = address.replace(/%.*$/, "");
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const parse = (s: string) => (s ? s.split(":").map((w) => Number.parseInt(w, 16)) : []);
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const words = [...h, ...Array<number>(Math.max(fill, 0)).fill(0), ...t];
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff)
    ? words
    : undefined;
}

/** True when the policy lets `host` (at `port`) resolve to anything: no policy, or a declared private host. */
function unrestricted(policy: NetworkPolicy | undefined, host: string, port: number | string): boolean {
  if (!policy?.publicOnly) return true;
  const allowed = policy.allowPrivateHosts ?? [];
  return allowed.includes(host) || allowed.includes(`${host}:${port}`);
}

/**
 * An undici connector that enforces `policy` around `base` (undici's connector with the connection's
 * TLS settings), or undefined when the policy allows everything (`base` then runs untouched). The name
 * is resolved here, every address it resolves to is checked, and the socket is opened to the checked
 * address itself — with the name kept as TLS `servername`, so SNI and certificate verification still
 * use it. Checking the address that is connected to, not the one seen when a request was validated, is
 * what defeats DNS rebinding.
 */
export function policyConnector(
  policy: NetworkPolicy | undefined,
  base: buildConnector.connector,
): buildConnector.connector | undefined {
  if (!policy?.publicOnly) return undefined;
  return (opts, callback) => {
    const host = opts.hostname.replace(/^\[|\]$/g, "");
    if (unrestricted(policy, host, opts.port)) return base(opts, callback);
    const connectTo = (address: string) => {
      const kind = nonPublicKind(address);
      if (kind) return callback(new AddressNotAllowedError(host, address, kind), null);
      base(
        {
          ...opts,
          hostname: address,
          ...(opts.protocol === "https:" && !isIP(host) ? { servername: opts.servername ?? host } : {}),
        },
        callback,
      );
    };
    if (isIP(host)) return connectTo(host);
    dnsLookup(host, { all: true }, (err, addresses) => {
      if (err) return callback(err, null);
      const bad = addresses.find((a) => nonPublicKind(a.address));
      if (bad) return connectTo(bad.address); // refused, naming the address that would have been used
      const first = addresses[0];
      if (!first)
        return callback(Object.assign(new Error(`no address for ${host}`), { code: "ENOTFOUND" }), null);
      connectTo(first.address);
    });
  };
}

/**
 * The policy for a host reached through a forward proxy, checked before the proxy is asked to connect.
 * The connection goes to the proxy — configuration the deployment chose, so its address may be private —
 * and the proxy resolves the target's name. ferry still checks what it can: an address written in the
 * URL, and every address the name resolves to here; a name that does not resolve here (only the proxy's
 * resolver knows it) is left to the proxy. So through a proxy, protection from DNS rebinding (a name
 * that resolves to a public address here and to a private one at the proxy) is the proxy's: give it an
 * egress policy of its own (docs/networks.md).
 */
export async function checkProxiedTarget(
  policy: NetworkPolicy | undefined,
  hostname: string,
  port: number | string,
): Promise<void> {
  const host = hostname.replace(/^\[|\]$/g, "");
  if (unrestricted(policy, host, port)) return;
  const refuse = (address: string) => {
    const kind = nonPublicKind(address);
    if (kind) throw new AddressNotAllowedError(host, address, kind);
  };
  if (isIP(host)) return refuse(host);
  let addresses: { address: string }[];
  try {
    addresses = await dnsLookupAll(host);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOTFOUND" || code === "ENODATA") return; // only the proxy can resolve it
    throw e;
  }
  for (const a of addresses) refuse(a.address);
}

function dnsLookupAll(host: string): Promise<{ address: string }[]> {
  return new Promise((resolve, reject) =>
    dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );
}

/** The AddressNotAllowedError inside `err` (or its causes), if any. */
export function addressNotAllowed(err: unknown): AddressNotAllowedError | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    if (e instanceof AddressNotAllowedError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
