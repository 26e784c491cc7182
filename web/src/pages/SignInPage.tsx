// Sign in with tenant, e-mail and password, or through the tenant's identity provider (OIDC,
// authorization code with PKCE; docs/oidc.md). Either way the refresh token ends up in an
// HttpOnly cookie and the access token in memory (lib/session.ts).
import { useEffect, useRef, useState } from "react";
import { ErrorMessage, Field, Form, Loading } from "../components/ui";
import { navigate, useLocation, useTitle } from "../lib/router";
import { AuthError, session } from "../lib/session";

const LAST_TENANT = "parley.tenant";
const PENDING_OIDC = "parley.oidc";

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** Off to the issuer, or an AuthError when Parley refuses to start the sign-in. */
async function startOidc(tenant: string): Promise<void> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)),
  );
  const params = new URLSearchParams({
    redirect_uri: `${location.origin}/signed-in`,
    state,
    code_challenge: base64url(digest),
    code_challenge_method: "S256",
  });
  const url = `/auth/oidc/${encodeURIComponent(tenant)}/login?${params}`;
  // Asked for JSON, Parley answers where to go (and sets the cookie that binds the sign-in to this
  // browser), or its refusal (a tenant without OIDC, a redirect URI it does not list, too many
  // sign-ins, an unreachable issuer), which this page shows instead of a raw JSON page.
  const started = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  const body = await started.json().catch(() => ({}));
  if (!started.ok || typeof body?.authorizationUrl !== "string") {
    const error = body?.error ?? {};
    throw new AuthError(
      error.code ?? "INTERNAL",
      error.message ?? `the server answered ${started.status}`,
      error.retryAfterSeconds,
    );
  }
  sessionStorage.setItem(PENDING_OIDC, JSON.stringify({ tenant, verifier, state, from: location.pathname }));
  location.assign(body.authorizationUrl);
}

export function SignInPage() {
  useTitle("Sign in");
  const [tenant, setTenant] = useState(() => localStorage.getItem(LAST_TENANT) ?? "");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<AuthError | null>(null);
  const [pending, setPending] = useState(false);
  const [oidcError, setOidcError] = useState<AuthError | null>(null);
  const [leaving, setLeaving] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => heading.current?.focus(), []);

  const submit = async () => {
    setPending(true);
    setError(null);
    try {
      await session.signIn(tenant.trim(), email.trim(), password);
      localStorage.setItem(LAST_TENANT, tenant.trim());
      if (location.pathname === "/") navigate("/chats", { replace: true });
    } catch (e) {
      setError(e instanceof AuthError ? e : new AuthError("NETWORK", String(e)));
    } finally {
      setPending(false);
    }
  };

  const signInWithOidc = async () => {
    setLeaving(true);
    setOidcError(null);
    try {
      await startOidc(tenant.trim());
    } catch (e) {
      setOidcError(e instanceof AuthError ? e : new AuthError("NETWORK", String(e)));
    } finally {
      setLeaving(false); // also for a page the back button brings back
    }
  };

  return (
    <main id="main" className="sign-in">
      <div className="card">
        <h1 tabIndex={-1} ref={heading}>
          Sign in to Parley
        </h1>
        <Form onSubmit={submit} label="Sign in">
          <Field label="Tenant" hint="Your organisation's handle, e.g. acme">
            {(p) => (
              <input
                {...p}
                name="tenant"
                autoComplete="organization"
                required
                value={tenant}
                onChange={(e) => setTenant(e.target.value)}
              />
            )}
          </Field>
          <Field label="E-mail">
            {(p) => (
              <input
                {...p}
                name="email"
                type="email"
                autoComplete="username"
                required
                value={email}
                onChange={(e) => setEmail(e.target.value)}
              />
            )}
          </Field>
          <Field label="Password">
            {(p) => (
              <input
                {...p}
                name="password"
                type="password"
                autoComplete="current-password"
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            )}
          </Field>
          {/* Here UNAUTHENTICATED means the credentials, not a sign-in that ended. */}
          <ErrorMessage error={error} messages={{ UNAUTHENTICATED: "Wrong tenant, e-mail or password." }} />
          {error?.retryAfterSeconds ? (
            <p className="hint">Try again in {Math.ceil(error.retryAfterSeconds / 60)} min.</p>
          ) : null}
          <button type="submit" className="primary" disabled={pending}>
            {pending ? "Signing in…" : "Sign in"}
          </button>
        </Form>
        <div className="divider" role="separator" />
        <button
          type="button"
          disabled={!tenant.trim() || leaving}
          onClick={() => void signInWithOidc()}
          aria-describedby="oidc-hint"
        >
          Sign in with your organisation's identity provider
        </button>
        <p id="oidc-hint" className="hint">
          Enter your tenant first. Works when your administrator has set up single sign-on.
        </p>
        <ErrorMessage
          error={oidcError}
          messages={{
            NOT_FOUND:
              "This tenant does not sign in through an identity provider. Check the tenant, or sign in with your e-mail and password.",
          }}
        />
      </div>
    </main>
  );
}

/** Where the identity provider's sign-in comes back (`/signed-in?code=…&state=…`). */
export function SignedInPage() {
  useTitle("Signing in");
  const { query } = useLocation();
  const [error, setError] = useState<AuthError | null>(null);
  const done = useRef(false);

  useEffect(() => {
    if (done.current) return;
    done.current = true;
    const pending = JSON.parse(sessionStorage.getItem(PENDING_OIDC) ?? "null");
    sessionStorage.removeItem(PENDING_OIDC);
    const code = query.get("code");
    if (!pending || !code || query.get("state") !== pending.state) {
      setError(new AuthError("UNAUTHENTICATED", "This sign-in link is not for this browser, or was used already."));
      return;
    }
    session
      .finishOidc(pending.tenant, code, pending.verifier)
      .then(() => {
        localStorage.setItem(LAST_TENANT, pending.tenant);
        navigate("/chats", { replace: true });
      })
      .catch((e) => setError(e instanceof AuthError ? e : new AuthError("NETWORK", String(e))));
  }, [query]);

  return (
    <main id="main" className="sign-in">
      <div className="card">
        <h1>Signing in</h1>
        {error ? (
          <>
            <ErrorMessage error={error} />
            <a href="/">Back to sign-in</a>
          </>
        ) : (
          <Loading label="Finishing your sign-in…" />
        )}
      </div>
    </main>
  );
}
