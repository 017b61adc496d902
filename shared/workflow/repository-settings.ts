/**
 * The settings of ECR repositories that ferry creates on demand, checked once here for all who read
 * them: the CDK app at synthesis (`ecr.createRepositories`, infra/constructs/props/ecr.ts), the Lambda
 * functions from their environment (ECR_CREATE_REPOSITORIES), the CLI (`--create-repos`). No imports:
 * infra/ may import this module (it holds no runtime code of the workflow).
 */

/** The environment variable that carries the settings (JSON) to the functions; absent: never create. */
export const CREATE_REPOSITORIES_ENV = "ECR_CREATE_REPOSITORIES";

/** What a created repository gets (CreateRepository, then PutLifecyclePolicy when a policy is given). */
export interface RepositorySettings {
  /** MUTABLE (ECR's default; promotions and migrations may move tags such as `latest`) or IMMUTABLE. */
  readonly tagMutability: "MUTABLE" | "IMMUTABLE";
  /** Basic scanning of every pushed image. */
  readonly scanOnPush: boolean;
  /** AES256 (S3-managed keys) or KMS (`kmsKey`, else the AWS managed key `aws/ecr`). */
  readonly encryption: "AES256" | "KMS";
  /** A KMS key ARN, with `encryption: "KMS"` only. */
  readonly kmsKey?: string;
  /** An ECR lifecycle policy document (`{"rules": [...]}`), put on repositories ferry creates. */
  readonly lifecyclePolicy?: { readonly rules: readonly unknown[] };
}

export const REPOSITORY_SETTING_KEYS = [
  "tagMutability",
  "scanOnPush",
  "encryption",
  "kmsKey",
  "lifecyclePolicy",
] as const;

/** ECR's limit on a lifecycle policy's text (PutLifecyclePolicy lifecyclePolicyText). */
export const LIFECYCLE_POLICY_MAX = 30_720;

const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;

/**
 * Checks settings as given (an object; every key optional) and applies the defaults. Throws an Error
 * naming `where.<key>` for an unknown key or a bad value.
 */
export function checkRepositorySettings(value: unknown, where: string): RepositorySettings {
  const bad = (key: string, what: string): never => {
    throw new Error(`${where}${key ? `.${key}` : ""} ${what}`);
  };
  if (value === null || typeof value !== "object" || Array.isArray(value))
    bad("", "must be an object (`{}` for the defaults)");
  const v = value as Record<string, unknown>;
  const unknown = Object.keys(v).filter((k) => !(REPOSITORY_SETTING_KEYS as readonly string[]).includes(k));
  if (unknown.length)
    bad("", `has unknown key(s) ${unknown.join(", ")} (known: ${REPOSITORY_SETTING_KEYS.join(", ")})`);

  const tagMutability = v.tagMutability ?? "MUTABLE";
  if (tagMutability !== "MUTABLE" && tagMutability !== "IMMUTABLE")
    bad("tagMutability", `must be "MUTABLE" or "IMMUTABLE", got ${JSON.stringify(tagMutability)}`);
  const scanOnPush = v.scanOnPush ?? true;
  if (typeof scanOnPush !== "boolean") bad("scanOnPush", "must be true or false");
  const encryption = v.encryption ?? "AES256";
  if (encryption !== "AES256" && encryption !== "KMS")
    bad("encryption", `must be "AES256" or "KMS", got ${JSON.stringify(encryption)}`);
  const kmsKey = v.kmsKey;
  if (kmsKey !== undefined) {
    if (encryption !== "KMS") bad("kmsKey", 'needs encryption: "KMS"');
    if (typeof kmsKey !== "string" || !KMS_KEY_ARN.test(kmsKey))
      bad(
        "kmsKey",
        `must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), got ${JSON.stringify(kmsKey)}`,
      );
  }
  const policy = v.lifecyclePolicy;
  if (policy !== undefined) checkLifecyclePolicy(policy, (what) => bad("lifecyclePolicy", what));

  return {
    tagMutability: tagMutability as RepositorySettings["tagMutability"],
    scanOnPush: scanOnPush as boolean,
    encryption: encryption as RepositorySettings["encryption"],
    ...(kmsKey !== undefined ? { kmsKey: kmsKey as string } : {}),
    ...(policy !== undefined ? { lifecyclePolicy: policy as RepositorySettings["lifecyclePolicy"] } : {}),
  };
}

/**
 * The shape ECR requires of a lifecycle policy (its "Lifecycle policy properties"): rules with unique
 * positive `rulePriority`, a `selection` (`tagStatus` tagged|untagged|any, `countType`
 * imageCountMoreThan|sinceImagePushed, a positive `countNumber`, `countUnit: "days"` with
 * sinceImagePushed) and `action: {"type": "expire"}`. Checked here so that a mistake fails synthesis,
 * not the first repository ferry creates.
 */
function checkLifecyclePolicy(policy: unknown, bad: (what: string) => never): void {
  if (policy === null || typeof policy !== "object" || Array.isArray(policy))
    bad('must be a lifecycle policy object: {"rules": [...]}');
  const rules = (policy as { rules?: unknown }).rules;
  if (!Array.isArray(rules) || rules.length === 0) bad("must have a non-empty `rules` list");
  const extra = Object.keys(policy as object).filter((k) => k !== "rules");
  if (extra.length) bad(`has unknown key(s) ${extra.join(", ")} (a policy holds \`rules\` only)`);
  const priorities = new Set<number>();
  (rules as unknown[]).forEach((rule, i) => {
    const r = rule as {
      rulePriority?: unknown;
      selection?: {
        tagStatus?: unknown;
        countType?: unknown;
        countNumber?: unknown;
        countUnit?: unknown;
        tagPrefixList?: unknown;
        tagPatternList?: unknown;
      };
      action?: { type?: unknown };
    };
    const at = `rules[${i}]`;
    if (!r || typeof r !== "object") bad(`${at} must be an object`);
    if (!Number.isInteger(r.rulePriority) || (r.rulePriority as number) < 1)
      bad(`${at}.rulePriority must be a positive integer`);
    if (priorities.has(r.rulePriority as number)) bad(`${at}.rulePriority ${r.rulePriority} is used twice`);
    priorities.add(r.rulePriority as number);
    const s = r.selection;
    if (!s || typeof s !== "object") bad(`${at}.selection is required`);
    if (!["tagged", "untagged", "any"].includes(s!.tagStatus as string))
      bad(`${at}.selection.tagStatus must be "tagged", "untagged" or "any"`);
    if (!["imageCountMoreThan", "sinceImagePushed"].includes(s!.countType as string))
      bad(`${at}.selection.countType must be "imageCountMoreThan" or "sinceImagePushed"`);
    if (!Number.isInteger(s!.countNumber) || (s!.countNumber as number) < 1)
      bad(`${at}.selection.countNumber must be a positive integer`);
    if (s!.countType === "sinceImagePushed" && s!.countUnit !== "days")
      bad(`${at}.selection.countUnit must be "days" with sinceImagePushed`);
    if (s!.tagStatus === "tagged" && s!.tagPrefixList === undefined && s!.tagPatternList === undefined)
      bad(`${at}.selection: tagStatus "tagged" needs tagPrefixList or tagPatternList`);
    if (r.action?.type !== "expire") bad(`${at}.action must be {"type": "expire"}`);
  });
  if (JSON.stringify(policy).length > LIFECYCLE_POLICY_MAX)
    bad(`is over ${LIFECYCLE_POLICY_MAX} characters as JSON (ECR's limit)`);
}

/** ECR_CREATE_REPOSITORIES → settings; undefined when unset (the functions then never create). */
export function repositorySettingsFromEnv(
  env: Record<string, string | undefined>,
): RepositorySettings | undefined {
  const text = env[CREATE_REPOSITORIES_ENV];
  if (text === undefined || text === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${CREATE_REPOSITORIES_ENV} must be a JSON object of repository settings`);
  }
  return checkRepositorySettings(parsed, CREATE_REPOSITORIES_ENV);
}
