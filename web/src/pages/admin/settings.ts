// The tenant's model settings as a form: what the fields hold, and the mutation input they make.
// Only the shape is checked here (numbers are numbers); the server checks the rules and answers
// BAD_USER_INPUT with a sentence, shown next to the form.
import type { UpdateTenantSettingsInput } from "../../gql/graphql";

export interface SettingsSource {
  defaultModel: string;
  allowedModels: string[];
  retentionDays?: number | null;
  modelSettings?: {
    fallbackModels: string[];
    systemPrompt?: string | null;
    cacheTtlSeconds?: number | null;
    enabledProviders?: string[] | null;
    modelMaxTokens: { model: string; maxTokens: number }[];
    userRequestsPerMinute?: number | null;
    tenantRequestsPerMinute?: number | null;
    tenantTokensPerMinute?: number | null;
    monthlyBudgetUsd?: number | null;
  } | null;
}

export interface SettingsForm {
  allowedModels: string;
  defaultModel: string;
  fallbackModels: string;
  systemPrompt: string;
  enabledProviders: string;
  /** Max reply tokens by model; "" for the platform default. */
  maxTokens: Record<string, string>;
  userRequestsPerMinute: string;
  tenantRequestsPerMinute: string;
  tenantTokensPerMinute: string;
  monthlyBudgetUsd: string;
  cacheTtlSeconds: string;
  retentionDays: string;
}

export type SettingsProblems = Partial<Record<keyof SettingsForm | `maxTokens:${string}`, string>>;

const text = (n: number | null | undefined) => (n === null || n === undefined || n === 0 ? "" : String(n));

/** A list typed one per line or separated by commas, without blanks or repeats. */
export function parseList(value: string): string[] {
  const items = value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
  return [...new Set(items)];
}

export function formFromTenant(tenant: SettingsSource): SettingsForm {
  const m = tenant.modelSettings;
  return {
    allowedModels: tenant.allowedModels.join("\n"),
    defaultModel: tenant.defaultModel,
    fallbackModels: (m?.fallbackModels ?? []).join("\n"),
    systemPrompt: m?.systemPrompt ?? "",
    enabledProviders: (m?.enabledProviders ?? []).join(", "),
    maxTokens: Object.fromEntries((m?.modelMaxTokens ?? []).map((c) => [c.model, String(c.maxTokens)])),
    userRequestsPerMinute: text(m?.userRequestsPerMinute),
    tenantRequestsPerMinute: text(m?.tenantRequestsPerMinute),
    tenantTokensPerMinute: text(m?.tenantTokensPerMinute),
    monthlyBudgetUsd: text(m?.monthlyBudgetUsd),
    cacheTtlSeconds: text(m?.cacheTtlSeconds),
    retentionDays: text(tenant.retentionDays),
  };
}

function wholeNumber(value: string): number | null | "bad" {
  const v = value.trim();
  if (v === "") return null;
  return /^\d+$/.test(v) ? Number(v) : "bad";
}

/** The mutation's input, or what is wrong with the form (by field). */
export function settingsInput(
  form: SettingsForm,
): { input: UpdateTenantSettingsInput; problems?: undefined } | { input?: undefined; problems: SettingsProblems } {
  const problems: SettingsProblems = {};
  const allowed = parseList(form.allowedModels);
  if (allowed.length === 0) problems.allowedModels = "List at least one model.";
  if (!allowed.includes(form.defaultModel)) problems.defaultModel = "The default model must be one of the allowed models.";

  const counts = {} as Record<
    "userRequestsPerMinute" | "tenantRequestsPerMinute" | "tenantTokensPerMinute" | "cacheTtlSeconds" | "retentionDays",
    number | null
  >;
  for (const field of [
    "userRequestsPerMinute",
    "tenantRequestsPerMinute",
    "tenantTokensPerMinute",
    "cacheTtlSeconds",
    "retentionDays",
  ] as const) {
    const n = wholeNumber(form[field]);
    if (n === "bad") problems[field] = "Enter a whole number, or leave it empty.";
    else counts[field] = n;
  }

  let budget: number | null = null;
  const b = form.monthlyBudgetUsd.trim();
  if (b !== "") {
    budget = /^\d+(\.\d{1,2})?$/.test(b) ? Number(b) : Number.NaN;
    if (Number.isNaN(budget)) problems.monthlyBudgetUsd = "Enter an amount in dollars, e.g. 250 or 99.50.";
  }

  const modelMaxTokens: { model: string; maxTokens: number }[] = [];
  for (const model of allowed) {
    const n = wholeNumber(form.maxTokens[model] ?? "");
    if (n === "bad" || n === 0) problems[`maxTokens:${model}`] = "Enter a positive whole number, or leave it empty.";
    else if (n !== null) modelMaxTokens.push({ model, maxTokens: n });
  }

  if (Object.keys(problems).length > 0) return { problems };
  return {
    input: {
      defaultModel: form.defaultModel,
      allowedModels: allowed,
      // Empty keeps chats for ever; the others: empty means none (0 is "no limit" / "off").
      retentionDays: counts.retentionDays,
      fallbackModels: parseList(form.fallbackModels),
      systemPrompt: form.systemPrompt.trim(),
      enabledProviders: parseList(form.enabledProviders.toLowerCase()),
      modelMaxTokens,
      userRequestsPerMinute: counts.userRequestsPerMinute ?? 0,
      tenantRequestsPerMinute: counts.tenantRequestsPerMinute ?? 0,
      tenantTokensPerMinute: counts.tenantTokensPerMinute ?? 0,
      monthlyBudgetUsd: budget ?? 0,
      cacheTtlSeconds: counts.cacheTtlSeconds ?? 0,
    },
  };
}
