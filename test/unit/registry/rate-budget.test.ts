import { describe, expect, it } from "vitest";
import { RegistryClient } from "../../../shared/registry/client.ts";
import { parseRateHeader, RateBudget, RateBudgetError } from "../../../shared/registry/http/rate-budget.ts";
import { budgetedConcurrency } from "../../../shared/workflow/steps/enumerate.ts";

const headers = (remaining: number) => ({
  "ratelimit-limit": "100;w=21600",
  "ratelimit-remaining": `${remaining};w=21600`,
});

describe("RateBudget", () => {
  it("parses Docker Hub's headers", () => {
    expect(parseRateHeader("100;w=21600")).toEqual({ value: 100, window: 21600 });
    expect(parseRateHeader(["7"])).toEqual({ value: 7 });
    expect(parseRateHeader("nonsense")).toBeUndefined();
    expect(parseRateHeader(undefined)).toBeUndefined();
  });

  it("sends the first counted request alone; a registry without headers is then unlimited", async () => {
    const b = new RateBudget();
    const first = await b.take("r", "x");
    let second = false;
    const waiting = b.take("r", "x").then((done) => {
      second = true;
      return done;
    });
    await Promise.resolve();
    expect(second).toBe(false); // held until the first answer
    first(); // answered, no rate-limit headers
    (await waiting)();
    expect(second).toBe(true);
    expect(b.summary()).toEqual([]);
  });

  it("takes one pull per request from what the registry said; at the reserve, refuses without sending", async () => {
    const b = new RateBudget({ reserve: 1, slowBelow: 2 });
    const probe = await b.take("hub", "pull a");
    b.observe("hub", headers(3));
    probe();
    (await b.take("hub", "pull b"))(); // 3 → 2
    (await b.take("hub", "pull c"))(); // 2 → 1 (serialised: below slowBelow)
    await expect(b.take("hub", "pull d")).rejects.toBeInstanceOf(RateBudgetError);
    await expect(b.take("hub", "pull d")).rejects.toThrow(
      /pull d: not sent — hub's rate limit has 1 pull\(s\) left of 100 per 6 h, the reserve being 1/,
    );
    expect(b.summary()).toEqual([
      { registry: "hub", limit: 100, windowSeconds: 21600, remainingAtStart: 4, remaining: 1, used: 3 },
    ]);
  });

  it("goes one at a time when low: the next counted request waits for the answer to the one before", async () => {
    const b = new RateBudget({ slowBelow: 5 });
    (await b.take("hub", "a"))();
    b.observe("hub", headers(4));
    const one = await b.take("hub", "b");
    let two = false;
    const pending = b.take("hub", "c").then((d) => {
      two = true;
      return d;
    });
    await Promise.resolve();
    expect(two).toBe(false);
    one();
    (await pending)();
    expect(two).toBe(true);
  });

  it("a registry's answers can only lower what is left (answers race the requests taken since)", async () => {
    const b = new RateBudget();
    (await b.take("hub", "a"))();
    b.observe("hub", headers(50));
    (await b.take("hub", "b"))(); // 49 left by our count
    b.observe("hub", headers(50)); // an answer sent before b was counted
    expect(b.summary()[0]!.remaining).toBe(49);
    expect(b.exhausted("hub", headers(0))).toBe(true);
  });
});

describe("the bulk migration's concurrency (Enumerate)", () => {
  it("is at most the pulls the source has left, at least 1; the request's without a limit", async () => {
    const budget = new RateBudget();
    const client = new RegistryClient({ rateBudget: budget });
    try {
      expect(budgetedConcurrency(10, "docker.io/team", { client })).toBe(10);
      (await budget.take("docker.io", "probe"))();
      budget.observe("docker.io", headers(3));
      expect(budgetedConcurrency(10, "docker.io/team", { client })).toBe(3);
      expect(budgetedConcurrency(2, "docker.io/team", { client })).toBe(2);
      budget.observe("docker.io", headers(0));
      expect(budgetedConcurrency(10, "docker.io/team", { client })).toBe(1);
      expect(budgetedConcurrency(10, "ghcr.io/team", { client })).toBe(10);
    } finally {
      await client.close();
    }
  });
});
