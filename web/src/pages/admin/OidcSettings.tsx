// The tenant's OpenID Connect sign-in: configure (replaces the current one) or turn it off.
import { useEffect, useState } from "react";
import { ConfirmDialog, ErrorMessage, Field, Form, Loading } from "../../components/ui";
import { graphql } from "../../gql";
import type { ConfigureOidcInput, Role } from "../../gql/graphql";
import { useMutation, useQuery } from "../../lib/hooks";
import { parseList } from "./settings";

const OidcConfigQuery = graphql(`
  query OidcConfig {
    oidcConfig {
      issuer
      clientId
      hasClientSecret
      allowedDomains
      autoProvisionRole
      redirectUris
      loginPath
      callbackPath
    }
  }
`);

const ConfigureOidc = graphql(`
  mutation ConfigureOidc($input: ConfigureOidcInput!) {
    configureOidc(input: $input) {
      position
    }
  }
`);

const RemoveOidc = graphql(`
  mutation RemoveOidc {
    removeOidc {
      position
    }
  }
`);

export function OidcSettings() {
  const query = useQuery(OidcConfigQuery, {});
  const configure = useMutation(ConfigureOidc);
  const remove = useMutation(RemoveOidc);
  const config = query.data?.oidcConfig ?? null;
  const [issuer, setIssuer] = useState("");
  const [clientId, setClientId] = useState("");
  const [secret, setSecret] = useState("");
  const [publicClient, setPublicClient] = useState(false);
  const [domains, setDomains] = useState("");
  const [provision, setProvision] = useState<"" | Role>("");
  const [redirects, setRedirects] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);

  useEffect(() => {
    setIssuer(config?.issuer ?? "");
    setClientId(config?.clientId ?? "");
    setPublicClient(config ? !config.hasClientSecret : false);
    setDomains(config?.allowedDomains.join(", ") ?? "");
    setProvision(config?.autoProvisionRole ?? "");
    setRedirects(config?.redirectUris.join("\n") ?? "");
    setSecret("");
  }, [config]);

  const submit = async () => {
    setSaved(null);
    const input: ConfigureOidcInput = {
      issuer: issuer.trim(),
      clientId: clientId.trim(),
      allowedDomains: parseList(domains),
      autoProvisionRole: provision || null,
      redirectUris: parseList(redirects),
    };
    // Omitted keeps the stored secret; empty makes a public client.
    if (publicClient) input.clientSecret = "";
    else if (secret) input.clientSecret = secret;
    await configure.run({ input });
    setSecret("");
    setSaved("OIDC sign-in is configured.");
    await query.reload();
  };

  const turnOff = async () => {
    setConfirming(false);
    setSaved(null);
    await remove.run({}).catch(() => undefined);
    await query.reload();
  };

  return (
    <section aria-labelledby="oidc">
      <h2 id="oidc">Single sign-on (OIDC)</h2>
      {query.loading && !query.data ? (
        <Loading label="Loading the OIDC sign-in…" />
      ) : query.error ? (
        <ErrorMessage error={query.error} />
      ) : config ? (
        <dl className="facts">
          <dt>Issuer</dt>
          <dd>{config.issuer}</dd>
          <dt>Client</dt>
          <dd>
            {config.clientId} ({config.hasClientSecret ? "with a client secret" : "public client, PKCE only"})
          </dd>
          <dt>Login path</dt>
          <dd>
            <code>{config.loginPath}</code>
          </dd>
          <dt>Callback to register</dt>
          <dd>
            Parley's public URL followed by <code>{config.callbackPath}</code>
          </dd>
        </dl>
      ) : (
        <p>OIDC sign-in is off: your users sign in with passwords.</p>
      )}

      <details className="oidc-form">
        <summary>{config ? "Change the OIDC sign-in" : "Set up OIDC sign-in"}</summary>
        <Form onSubmit={submit} label="OIDC sign-in">
          <Field label="Issuer URL" hint="Exactly as its discovery document names it (https).">
            {(p) => <input {...p} type="url" required value={issuer} onChange={(e) => setIssuer(e.target.value)} />}
          </Field>
          <Field label="Client id">
            {(p) => <input {...p} required value={clientId} onChange={(e) => setClientId(e.target.value)} />}
          </Field>
          <div className="check">
            <input
              id="oidc-public"
              type="checkbox"
              checked={publicClient}
              onChange={(e) => setPublicClient(e.target.checked)}
            />
            <label htmlFor="oidc-public">Public client (no secret, PKCE only)</label>
          </div>
          {!publicClient && (
            <Field
              label="Client secret"
              hint={config?.hasClientSecret ? "Stored encrypted, never shown. Leave empty to keep the current one." : "Stored encrypted, never shown."}
            >
              {(p) => (
                <input {...p} type="password" autoComplete="off" value={secret} onChange={(e) => setSecret(e.target.value)} />
              )}
            </Field>
          )}
          <Field label="Allowed e-mail domains" hint="Comma-separated. Empty: any existing user of the tenant.">
            {(p) => <input {...p} value={domains} onChange={(e) => setDomains(e.target.value)} />}
          </Field>
          <Field label="Create unknown users as" hint="Needs allowed domains. None: unknown users are refused.">
            {(p) => (
              <select {...p} value={provision} onChange={(e) => setProvision(e.target.value as "" | Role)}>
                <option value="">None (refuse them)</option>
                <option value="MEMBER">Member</option>
                <option value="AUDITOR">Auditor</option>
              </select>
            )}
          </Field>
          <Field label="Redirect URIs" hint="Your client applications' pages a finished sign-in may return to, one per line.">
            {(p) => <textarea {...p} rows={3} required value={redirects} onChange={(e) => setRedirects(e.target.value)} />}
          </Field>
          <ErrorMessage error={configure.error} />
          {saved && (
            <p className="ok" role="status">
              {saved}
            </p>
          )}
          <div className="form-actions">
            <button type="submit" className="primary" disabled={configure.pending}>
              Save OIDC sign-in
            </button>
            {config && (
              <button type="button" className="danger" onClick={() => setConfirming(true)}>
                Turn OIDC off
              </button>
            )}
          </div>
        </Form>
      </details>
      <ErrorMessage error={remove.error} />
      <ConfirmDialog
        open={confirming}
        title="Turn OIDC sign-in off?"
        confirmLabel="Turn off"
        danger
        onConfirm={() => void turnOff()}
        onCancel={() => setConfirming(false)}
      >
        <p>Users can no longer sign in through {config?.issuer}. Passwords keep working.</p>
      </ConfirmDialog>
    </section>
  );
}
