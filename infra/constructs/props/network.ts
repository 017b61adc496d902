/**
 * How the functions reach registries: which may be on private addresses, and a forward proxy
 * (docs/networks.md).
 */
import { Token } from "aws-cdk-lib";
import { fail, optionalList, REGISTRY_HOST } from "./common.ts";

/** A forward proxy for the functions' registry traffic. */
export interface ProxyProps {
  /**
   * The proxy for https registries: `http://host:port` (CONNECT tunnels). No credentials in the URL:
   * they would be stored in clear in the template and the functions' configuration.
   * @default none
   */
  readonly httpsProxy?: string;
  /**
   * The proxy for plain-http registries (absolute-form requests).
   * @default none
   */
  readonly httpProxy?: string;
  /**
   * Hosts reached directly: names (with their subdomains; `.name` subdomains only), IP addresses, CIDR
   * ranges, `host:port`, or `*`.
   * @default none
   */
  readonly noProxy?: readonly string[];
}

export interface NetworkSettings {
  /**
   * Registries (`host` for any port, or `host:port`) the functions may reach on private, loopback or
   * link-local addresses (PRIVATE_REGISTRIES). Every other connection — to a registry, a redirect target
   * or a token realm — must go to a public address, checked on the address actually connected to; a
   * private registry must be declared here (and allowed by the lists above).
   * @default none: public addresses only
   */
  readonly privateRegistries?: readonly string[];
  /**
   * A forward proxy for registry traffic (a VPC whose egress goes through one): HTTPS_PROXY, HTTP_PROXY and
   * NO_PROXY of every function with a registry client, read as curl and Go read them
   * (shared/registry/http/proxy.ts). The proxy may be on a private address; targets are still checked
   * against the network policy by name (docs/networks.md). The AWS SDK's own calls do not use it.
   * @default none: direct connections
   */
  readonly proxy?: ProxyProps;
}

export interface ResolvedNetwork {
  readonly privateRegistries: readonly string[];
  readonly proxy: ProxyProps | undefined;
}

export function resolveNetwork(props: NetworkSettings): ResolvedNetwork {
  const privateRegistries = optionalList("privateRegistries", props.privateRegistries);
  for (const host of privateRegistries) {
    if (typeof host !== "string" || !REGISTRY_HOST.test(host))
      fail(
        `privateRegistries: ${JSON.stringify(host)} is not a registry host (lower-case host name or address ` +
          "with an optional :port)",
      );
  }

  const proxy = props.proxy;
  if (proxy !== undefined) {
    for (const key of ["httpsProxy", "httpProxy"] as const) {
      const v = proxy[key];
      if (v === undefined || Token.isUnresolved(v)) continue;
      const url = URL.canParse(v) ? new URL(v) : undefined;
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname)
        fail(`proxy.${key} must be an http:// or https:// proxy URL, e.g. http://proxy.internal:3128`);
      else if (url.username || url.password)
        fail(
          `proxy.${key} must not carry credentials: they would be stored in clear in the template and the functions' configuration (allow the functions' addresses at the proxy instead)`,
        );
      else if (url.pathname !== "/" || url.search || url.hash)
        fail(`proxy.${key} is scheme://host[:port], without a path`);
    }
    for (const entry of proxy.noProxy ?? []) {
      if (typeof entry !== "string" || !/^[^\s,]+$/.test(entry))
        fail(`proxy.noProxy: ${JSON.stringify(entry)} is not a host, address, CIDR range or *`);
    }
  }
  return { privateRegistries, proxy };
}
