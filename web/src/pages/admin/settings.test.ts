import { describe, expect, it } from "vitest";
import { formFromTenant, parseList, settingsInput } from "./settings";

const tenant = {
  defaultModel: "openai/gpt-4o-mini",
  allowedModels: ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"],
  retentionDays: null,
  modelSettings: {
    fallbackModels: ["anthropic/claude-3-5-haiku"],
    systemPrompt: "Be brief.",
    cacheTtlSeconds: null,
    enabledProviders: null,
    modelMaxTokens: [{ model: "openai/gpt-4o-mini", maxTokens: 512 }],
    userRequestsPerMinute: 20,
    tenantRequestsPerMinute: null,
    tenantTokensPerMinute: null,
    monthlyBudgetUsd: 250.5,
  },
};

describe("parseList", () => {
  it("takes lines or commas, without blanks or repeats", () => {
    expect(parseList("a\n b ,c\n\na")).toEqual(["a", "b", "c"]);
    expect(parseList("  ")).toEqual([]);
  });
});

describe("settings form", () => {
  it("round-trips the tenant's settings unchanged", () => {
    const result = settingsInput(formFromTenant(tenant));
    expect(result.problems).toBeUndefined();
    expect(result.input).toEqual({
      defaultModel: "openai/gpt-4o-mini",
      allowedModels: ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"],
      retentionDays: null,
      fallbackModels: ["anthropic/claude-3-5-haiku"],
      systemPrompt: "Be brief.",
      enabledProviders: [],
      modelMaxTokens: [{ model: "openai/gpt-4o-mini", maxTokens: 512 }],
      userRequestsPerMinute: 20,
      tenantRequestsPerMinute: 0,
      tenantTokensPerMinute: 0,
      monthlyBudgetUsd: 250.5,
      cacheTtlSeconds: 0,
    });
  });

  it("sends caps only for models still allowed", () => {
    const form = formFromTenant(tenant);
    form.allowedModels = "anthropic/claude-3-5-haiku";
    form.defaultModel = "anthropic/claude-3-5-haiku";
    expect(settingsInput(form).input?.modelMaxTokens).toEqual([]);
  });

  it("names each field that is not a number", () => {
    const form = { ...formFromTenant(tenant), retentionDays: "thirty", monthlyBudgetUsd: "1,000" };
    form.maxTokens = { "openai/gpt-4o-mini": "0" };
    const { problems } = settingsInput(form);
    expect(Object.keys(problems ?? {}).sort()).toEqual(["maxTokens:openai/gpt-4o-mini", "monthlyBudgetUsd", "retentionDays"]);
  });

  it("wants a default among the allowed models", () => {
    const form = { ...formFromTenant(tenant), defaultModel: "google/gemini" };
    expect(settingsInput(form).problems?.defaultModel).toMatch(/allowed/);
  });

  it("reads a tenant without model settings as empty fields", () => {
    const form = formFromTenant({ defaultModel: "m", allowedModels: ["m"], modelSettings: null });
    expect(form.fallbackModels).toBe("");
    expect(form.maxTokens).toEqual({});
  });
});
