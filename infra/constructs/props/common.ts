/**
 * What the props' modules share: one way to fail at synthesis, and the checks more than one concern makes.
 * Each module of this folder takes its part of ImageTransferProps (../props.ts), applies its defaults and
 * validates it, with messages that name the prop.
 */
import { Token } from "aws-cdk-lib";

/** Synthesis stops here: one error, naming the prop and what was wrong. */
export const fail = (message: string): never => {
  throw new Error(`ImageTransfer: ${message}`);
};

/**
 * A concrete value must match `pattern`; a token (an unresolved CDK reference, known at deploy time only)
 * cannot be checked now and is accepted.
 */
export const matchesUnlessToken = (pattern: RegExp, value: string): boolean =>
  Token.isUnresolved(value) || pattern.test(value);

/** An optional list: absent is empty, anything but an array fails. */
export const optionalList = (name: string, list: readonly string[] | undefined): readonly string[] => {
  if (list === undefined) return [];
  if (!Array.isArray(list)) fail(`${name} must be a list of strings`);
  return list;
};

/** A registry as image references name it: a lower-case host name or address with an optional :port. */
export const REGISTRY_HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/;
