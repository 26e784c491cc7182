// Keys: the tenant's own provider keys (write-only: only a fingerprint comes back), the service
// accounts' API keys (the secret shown once), and the tenant's OIDC sign-in.
import { useRef, useState } from "react";
import { ConfirmDialog, Empty, ErrorMessage, Field, Form, formatTime, Loading } from "../../components/ui";
import { graphql } from "../../gql";
import type { ApiKeyRole } from "../../gql/graphql";
import { useMutation, useQuery } from "../../lib/hooks";
import { OidcSettings } from "./OidcSettings";

const ProviderKeys = graphql(`
  query ProviderKeys {
    providerKeys {
      provider
      fingerprint
      last4
    }
  }
`);

const SetProviderKey = graphql(`
  mutation SetProviderKey($input: SetProviderKeyInput!) {
    setProviderKey(input: $input) {
      key {
        provider
        fingerprint
        last4
      }
      position
    }
  }
`);

const RemoveProviderKey = graphql(`
  mutation RemoveProviderKey($input: ProviderInput!) {
    removeProviderKey(input: $input) {
      position
    }
  }
`);

const ApiKeys = graphql(`
  query ApiKeys {
    apiKeys {
      keyId
      name
      role
      prefix
      last4
      serviceAccountId
      createdAt
      revokedAt
      revoked
    }
  }
`);

const CreateApiKey = graphql(`
  mutation CreateApiKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      key {
        keyId
        name
        role
        prefix
        last4
      }
      secret
      position
    }
  }
`);

const RevokeApiKey = graphql(`
  mutation RevokeApiKey($input: RevokeApiKeyInput!) {
    revokeApiKey(input: $input) {
      keyId
      position
    }
  }
`);

const KNOWN_PROVIDERS = ["openai", "anthropic", "google", "azure"];
const API_KEY_ROLES: { value: ApiKeyRole; label: string }[] = [
  { value: "MEMBER", label: "Member" },
  { value: "AUDITOR", label: "Auditor" },
  { value: "TENANT_ADMIN", label: "Tenant admin" },
];

export function KeysSection() {
  return (
    <>
      <ProviderKeysPanel />
      <ApiKeysPanel />
      <OidcSettings />
    </>
  );
}

function ProviderKeysPanel() {
  const keys = useQuery(ProviderKeys, {});
  const setKey = useMutation(SetProviderKey);
  const removeKey = useMutation(RemoveProviderKey);
  const [provider, setProvider] = useState("");
  const [secret, setSecret] = useState("");
  const [done, setDone] = useState<string | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);

  const save = async () => {
    setDone(null);
    const { setProviderKey } = await setKey.run({ input: { provider: provider.trim(), apiKey: secret } });
    // The key leaves the page's memory as soon as the server has it.
    setSecret("");
    setProvider("");
    setDone(
      setProviderKey.key
        ? `The ${setProviderKey.key.provider} key ending in ${setProviderKey.key.last4} is set.`
        : "The key is set.",
    );
    await keys.reload();
  };

  const remove = async () => {
    const name = removing;
    setRemoving(null);
    if (!name) return;
    setDone(null);
    await removeKey.run({ input: { provider: name } }).catch(() => undefined);
    await keys.reload();
  };

  return (
    <section aria-labelledby="provider-keys">
      <h2 id="provider-keys">Provider keys</h2>
      <p className="hint">
        Your tenant's own API keys for model providers. Replies with that provider's models use yours instead of the
        platform's. Parley stores them encrypted and never shows them again: you see a fingerprint (the start of its
        SHA-256) and the last four characters.
      </p>
      {keys.loading && !keys.data ? (
        <Loading label="Loading provider keys…" />
      ) : keys.error ? (
        <ErrorMessage error={keys.error} />
      ) : keys.data?.providerKeys.length ? (
        <table className="data">
          <thead>
            <tr>
              <th scope="col">Provider</th>
              <th scope="col">Fingerprint</th>
              <th scope="col">Ends in</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.data.providerKeys.map((k) => (
              <tr key={k.provider}>
                <th scope="row">{k.provider}</th>
                <td>
                  <code>{k.fingerprint}</code>
                </td>
                <td>
                  <code>…{k.last4}</code>
                </td>
                <td>
                  <button type="button" aria-label={`Remove the ${k.provider} key`} onClick={() => setRemoving(k.provider)}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <Empty>No provider keys of your own: replies use the platform's keys.</Empty>
      )}
      <ErrorMessage error={removeKey.error} />

      <h3>Set a provider key</h3>
      <Form onSubmit={save} label="Set a provider key">
        <div className="settings-grid">
          <Field label="Provider" hint="openai, anthropic, google, azure, or a configured OpenAI-compatible server.">
            {(p) => (
              <>
                <input
                  {...p}
                  list="known-providers"
                  required
                  autoComplete="off"
                  value={provider}
                  onChange={(e) => setProvider(e.target.value)}
                />
                <datalist id="known-providers">
                  {KNOWN_PROVIDERS.map((name) => (
                    <option key={name} value={name} />
                  ))}
                </datalist>
              </>
            )}
          </Field>
          <Field label="Provider API key" hint="Write-only: it replaces the current key and is never shown.">
            {(p) => (
              <input
                {...p}
                type="password"
                required
                autoComplete="off"
                spellCheck={false}
                value={secret}
                onChange={(e) => setSecret(e.target.value)}
              />
            )}
          </Field>
        </div>
        <ErrorMessage error={setKey.error} />
        {done && (
          <p className="ok" role="status">
            {done}
          </p>
        )}
        <button type="submit" className="primary" disabled={setKey.pending}>
          Set key
        </button>
      </Form>

      <ConfirmDialog
        open={removing !== null}
        title={`Remove the ${removing ?? ""} key?`}
        confirmLabel="Remove key"
        danger
        onConfirm={() => void remove()}
        onCancel={() => setRemoving(null)}
      >
        <p>Replies with {removing}'s models go back to the platform's key. The stored key is deleted.</p>
      </ConfirmDialog>
    </section>
  );
}

function ApiKeysPanel() {
  const keys = useQuery(ApiKeys, {});
  const create = useMutation(CreateApiKey);
  const revoke = useMutation(RevokeApiKey);
  const [name, setName] = useState("");
  const [role, setRole] = useState<ApiKeyRole>("MEMBER");
  const [created, setCreated] = useState<{ name: string; secret: string } | null>(null);
  const [revoking, setRevoking] = useState<{ keyId: string; name: string } | null>(null);

  const submit = async () => {
    const { createApiKey } = await create.run({ input: { name: name.trim(), role } });
    setCreated({ secret: createApiKey.secret, name: createApiKey.key.name });
    setName("");
    await keys.reload();
  };

  const confirmRevoke = async () => {
    const key = revoking;
    setRevoking(null);
    if (!key) return;
    await revoke.run({ input: { keyId: key.keyId } }).catch(() => undefined);
    await keys.reload();
  };

  return (
    <section aria-labelledby="api-keys">
      <h2 id="api-keys">API keys</h2>
      <p className="hint">
        Keys for integrations: each acts as its own service account with the role you choose. Send one as{" "}
        <code>Authorization: Bearer &lt;key&gt;</code> or <code>X-API-Key: &lt;key&gt;</code>.
      </p>
      {created && <NewSecret name={created.name} secret={created.secret} onDone={() => setCreated(null)} />}
      {keys.loading && !keys.data ? (
        <Loading label="Loading API keys…" />
      ) : keys.error ? (
        <ErrorMessage error={keys.error} />
      ) : keys.data?.apiKeys.length ? (
        <table className="data">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Key</th>
              <th scope="col">Created</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.data.apiKeys.map((k) => (
              <tr key={k.keyId} className={k.revoked ? "inactive" : undefined}>
                <th scope="row">{k.name}</th>
                <td>{roleLabel(k.role)}</td>
                <td>
                  <code>
                    {k.prefix}_…{k.last4}
                  </code>
                </td>
                <td>{formatTime(k.createdAt)}</td>
                <td>{k.revoked ? `Revoked ${formatTime(k.revokedAt)}` : "Active"}</td>
                <td>
                  {!k.revoked && (
                    <button type="button" aria-label={`Revoke ${k.name}`} onClick={() => setRevoking({ keyId: k.keyId, name: k.name })}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <Empty>No API keys yet.</Empty>
      )}
      <ErrorMessage error={revoke.error} />

      <h3>Create an API key</h3>
      <Form onSubmit={submit} label="Create an API key">
        <div className="settings-grid">
          <Field label="Key name" hint={'What the key is for, e.g. "analytics export".'}>
            {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
          <Field label="Key role">
            {(p) => (
              <select {...p} value={role} onChange={(e) => setRole(e.target.value as ApiKeyRole)}>
                {API_KEY_ROLES.map((r) => (
                  <option key={r.value} value={r.value}>
                    {r.label}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <ErrorMessage error={create.error} />
        <button type="submit" className="primary" disabled={create.pending}>
          Create API key
        </button>
      </Form>

      <ConfirmDialog
        open={revoking !== null}
        title={`Revoke ${revoking?.name ?? ""}?`}
        confirmLabel="Revoke key"
        danger
        onConfirm={() => void confirmRevoke()}
        onCancel={() => setRevoking(null)}
      >
        <p>
          Every request with this key is refused from the next one on. Integrations that use it stop working. This cannot be
          undone: create a new key instead.
        </p>
      </ConfirmDialog>
    </section>
  );
}

/** The new key's secret, this once: copy it now. */
function NewSecret({ name, secret, onDone }: { name: string; secret: string; onDone: () => void }) {
  const [copied, setCopied] = useState<"yes" | "failed" | null>(null);
  const field = useRef<HTMLInputElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      setCopied("yes");
    } catch {
      // No clipboard (permissions, plain HTTP): select the text so that Ctrl+C works.
      field.current?.select();
      setCopied("failed");
    }
  };
  return (
    <div className="secret-once" role="region" aria-labelledby="new-key-title">
      <h3 id="new-key-title">The key “{name}” is created</h3>
      <p className="warning">
        <strong>Copy it now: it will not be shown again.</strong> Parley keeps only its hash. If you lose it, revoke it
        and create another.
      </p>
      <div className="secret-row">
        <label htmlFor="new-key-secret" className="visually-hidden">
          The new API key
        </label>
        <input
          id="new-key-secret"
          ref={field}
          readOnly
          value={secret}
          spellCheck={false}
          onFocus={(e) => e.currentTarget.select()}
          className="mono"
        />
        <button type="button" className="primary" onClick={() => void copy()}>
          Copy key
        </button>
      </div>
      <p role="status" className={copied === "failed" ? "error" : "ok"}>
        {copied === "yes" ? "Copied to the clipboard." : copied === "failed" ? "Copying failed: the key is selected, press Ctrl+C (⌘C)." : ""}
      </p>
      <button type="button" onClick={onDone}>
        I have stored the key
      </button>
    </div>
  );
}

function roleLabel(role: string): string {
  return API_KEY_ROLES.find((r) => r.value === role)?.label ?? role.toLowerCase();
}
