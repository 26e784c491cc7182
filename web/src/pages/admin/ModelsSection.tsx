// Models & limits: the tenant's model gateway settings (updateTenantSettings).
import { type ReactNode, useEffect, useId, useState } from "react";
import { ErrorMessage, Field, Form, Loading } from "../../components/ui";
import { graphql } from "../../gql";
import { useMutation, useQuery } from "../../lib/hooks";
import { formFromTenant, parseList, type SettingsForm, type SettingsProblems, settingsInput } from "./settings";

const TenantSettings = graphql(`
  query TenantSettings($afterPosition: Int) {
    tenant(afterPosition: $afterPosition) {
      id
      name
      defaultModel
      allowedModels
      retentionDays
      modelSettings {
        fallbackModels
        systemPrompt
        cacheTtlSeconds
        enabledProviders
        modelMaxTokens {
          model
          maxTokens
        }
        userRequestsPerMinute
        tenantRequestsPerMinute
        tenantTokensPerMinute
        monthlyBudgetUsd
      }
    }
  }
`);

const UpdateTenantSettings = graphql(`
  mutation UpdateTenantSettings($input: UpdateTenantSettingsInput!) {
    updateTenantSettings(input: $input) {
      tenantId
      position
    }
  }
`);

export function ModelsSection() {
  const [afterPosition, setAfterPosition] = useState<number | null>(null);
  const query = useQuery(TenantSettings, { afterPosition });
  const save = useMutation(UpdateTenantSettings);
  const [form, setForm] = useState<SettingsForm | null>(null);
  const [problems, setProblems] = useState<SettingsProblems>({});
  const [saved, setSaved] = useState(false);

  const tenant = query.data?.tenant;
  useEffect(() => {
    if (tenant) setForm(formFromTenant(tenant));
  }, [tenant]);

  if (query.error && !tenant) return <ErrorMessage error={query.error} />;
  if (!form || !tenant) return <Loading label="Loading the model settings…" />;
  if (!tenant.modelSettings) {
    return <p>Only tenant admins see and change the model settings.</p>;
  }

  const set = <K extends keyof SettingsForm>(key: K, value: SettingsForm[K]) => {
    setSaved(false);
    setForm({ ...form, [key]: value });
  };
  const allowed = parseList(form.allowedModels);

  const submit = async () => {
    setSaved(false);
    const result = settingsInput(form);
    if (result.problems) {
      save.reset();
      setProblems(result.problems);
      return;
    }
    setProblems({});
    const { updateTenantSettings } = await save.run({ input: result.input });
    setSaved(true);
    setAfterPosition(updateTenantSettings.position);
  };

  const problemCount = Object.keys(problems).length;
  return (
    <Form onSubmit={submit} label="Model settings">
      <fieldset>
        <legend>Models</legend>
        <Checked label="Allowed models" hint="One model reference per line, e.g. openai/gpt-4o-mini." problem={problems.allowedModels}>
          {(p) => (
            <textarea {...p} rows={4} value={form.allowedModels} onChange={(e) => set("allowedModels", e.target.value)} />
          )}
        </Checked>
        <Checked label="Default model" hint="New chats use it unless they name another allowed model." problem={problems.defaultModel}>
          {(p) => (
            <select
              {...p}
              value={form.defaultModel}
              onChange={(e) => set("defaultModel", e.target.value)}
            >
              {!allowed.includes(form.defaultModel) && <option value={form.defaultModel}>{form.defaultModel || "—"}</option>}
              {allowed.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          )}
        </Checked>
        <Field
          label="Fallback models"
          hint="Tried in this order when a chat's model fails; one per line, each an allowed model (at most 5)."
        >
          {(p) => (
            <textarea {...p} rows={3} value={form.fallbackModels} onChange={(e) => set("fallbackModels", e.target.value)} />
          )}
        </Field>
        <Field
          label="Enabled providers"
          hint="Comma-separated, e.g. openai, anthropic. Every allowed model must belong to one. Empty: every provider the platform offers."
        >
          {(p) => (
            <input {...p} value={form.enabledProviders} onChange={(e) => set("enabledProviders", e.target.value)} />
          )}
        </Field>
        <Field label="System prompt" hint="Sent before every conversation. Empty: none.">
          {(p) => (
            <textarea {...p} rows={4} value={form.systemPrompt} onChange={(e) => set("systemPrompt", e.target.value)} />
          )}
        </Field>
      </fieldset>

      {allowed.length > 0 && (
        <fieldset>
          <legend>Reply token caps</legend>
          <p className="hint">The most tokens one reply of a model may have. Empty: the platform's default.</p>
          <div className="settings-grid">
            {allowed.map((model) => (
              <Checked key={model} label={`Max reply tokens for ${model}`} problem={problems[`maxTokens:${model}`]}>
                {(p) => (
                  <input
                    {...p}
                    inputMode="numeric"
                    value={form.maxTokens[model] ?? ""}
                    onChange={(e) => set("maxTokens", { ...form.maxTokens, [model]: e.target.value })}
                  />
                )}
              </Checked>
            ))}
          </div>
        </fieldset>
      )}

      <fieldset>
        <legend>Budget and rate limits</legend>
        <p className="hint">Empty or 0: no limit. Beyond a limit, sending a message is refused until it allows again.</p>
        <div className="settings-grid">
          <NumberField label="Monthly budget (USD)" hint="Model spend per calendar month (UTC)." field="monthlyBudgetUsd"
            form={form} set={set} problems={problems} decimal />
          <NumberField label="Messages per minute per user" field="userRequestsPerMinute" form={form} set={set} problems={problems} />
          <NumberField label="Messages per minute for the tenant" field="tenantRequestsPerMinute" form={form} set={set} problems={problems} />
          <NumberField label="Tokens per minute for the tenant" field="tenantTokensPerMinute" form={form} set={set} problems={problems} />
        </div>
      </fieldset>

      <fieldset>
        <legend>Retention and cache</legend>
        <div className="settings-grid">
          <NumberField
            label="Retention (days)"
            hint="Chats with no activity for this long are erased for good. Empty: kept for ever."
            field="retentionDays" form={form} set={set} problems={problems}
          />
          <NumberField
            label="Reply cache (seconds)"
            hint="Reuse the reply to an identical conversation for this long; cached replies cost nothing. Empty or 0: off."
            field="cacheTtlSeconds" form={form} set={set} problems={problems}
          />
        </div>
      </fieldset>

      {problemCount > 0 && (
        <p className="error" role="alert">
          {problemCount === 1 ? "One field needs attention." : `${problemCount} fields need attention.`}
        </p>
      )}
      <ErrorMessage error={save.error} />
      {saved && (
        <p className="ok" role="status">
          Settings saved.
        </p>
      )}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={save.pending}>
          {save.pending ? "Saving…" : "Save settings"}
        </button>
        <button
          type="button"
          onClick={() => {
            setForm(formFromTenant(tenant));
            setProblems({});
            save.reset();
            setSaved(false);
          }}
        >
          Undo changes
        </button>
      </div>
    </Form>
  );
}

type CountField =
  | "monthlyBudgetUsd"
  | "userRequestsPerMinute"
  | "tenantRequestsPerMinute"
  | "tenantTokensPerMinute"
  | "retentionDays"
  | "cacheTtlSeconds";

function NumberField({
  label,
  hint,
  field,
  form,
  set,
  problems,
  decimal = false,
}: {
  label: string;
  hint?: string;
  field: CountField;
  form: SettingsForm;
  set: (key: CountField, value: string) => void;
  problems: SettingsProblems;
  decimal?: boolean;
}) {
  return (
    <Checked label={label} hint={hint} problem={problems[field]}>
      {(p) => (
        <input {...p} inputMode={decimal ? "decimal" : "numeric"} value={form[field]} onChange={(e) => set(field, e.target.value)} />
      )}
    </Checked>
  );
}

interface CheckedProps {
  id: string;
  "aria-describedby"?: string;
  "aria-invalid"?: boolean;
}

/** A field with the form's own complaint about it, announced with the field. */
function Checked({
  label,
  hint,
  problem,
  children,
}: {
  label: string;
  hint?: string;
  problem?: string;
  children: (props: CheckedProps) => ReactNode;
}) {
  const problemId = useId();
  return (
    <div>
      <Field label={label} hint={hint}>
        {(p) =>
          children({
            ...p,
            "aria-describedby": [p["aria-describedby"], problem ? problemId : null].filter(Boolean).join(" ") || undefined,
            "aria-invalid": problem ? true : undefined,
          })
        }
      </Field>
      {problem && (
        <p id={problemId} className="error field-problem">
          {problem}
        </p>
      )}
    </div>
  );
}
