// The signed-in person's own account: who they are, change password, sign out everywhere.
import { useState } from "react";
import { ErrorMessage, Field, Form, Page } from "../../components/ui";
import { graphql } from "../../gql";
import { useMutation, useSessionUser } from "../../lib/hooks";
import { useTitle } from "../../lib/router";
import { AuthError, session } from "../../lib/session";

const LogoutEverywhere = graphql(`
  mutation LogoutEverywhere {
    logoutEverywhere {
      sessionsRevoked
    }
  }
`);

export function AccountPage() {
  useTitle("Account");
  const user = useSessionUser();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState<AuthError | null>(null);
  const [done, setDone] = useState(false);
  const everywhere = useMutation(LogoutEverywhere);

  const change = async () => {
    setDone(false);
    if (next !== repeat) {
      setError(new AuthError("BAD_USER_INPUT", "The two new passwords differ."));
      return;
    }
    try {
      await session.changePassword(current, next);
      setError(null);
      setDone(true);
      setCurrent("");
      setNext("");
      setRepeat("");
    } catch (e) {
      setError(e instanceof AuthError ? e : new AuthError("NETWORK", String(e)));
    }
  };

  if (!user) return null;
  return (
    <Page title="Account">
      <dl className="facts">
        <dt>Name</dt>
        <dd>{user.displayName}</dd>
        <dt>E-mail</dt>
        <dd>{user.email}</dd>
        <dt>Role</dt>
        <dd>{user.role.replace("_", " ").toLowerCase()}</dd>
      </dl>
      <h2>Change password</h2>
      <p className="hint">Every other sign-in of yours ends; this browser stays signed in.</p>
      <Form onSubmit={change} label="Change password">
        <Field label="Current password">
          {(p) => (
            <input {...p} type="password" autoComplete="current-password" required value={current}
              onChange={(e) => setCurrent(e.target.value)} />
          )}
        </Field>
        <Field label="New password" hint="12 to 1024 characters">
          {(p) => (
            <input {...p} type="password" autoComplete="new-password" required minLength={12}
              value={next} onChange={(e) => setNext(e.target.value)} />
          )}
        </Field>
        <Field label="New password again">
          {(p) => (
            <input {...p} type="password" autoComplete="new-password" required minLength={12}
              value={repeat} onChange={(e) => setRepeat(e.target.value)} />
          )}
        </Field>
        <ErrorMessage error={error} />
        {done && <p role="status" className="ok">Password changed.</p>}
        <button type="submit" className="primary">Change password</button>
      </Form>
      <h2>Sign out everywhere</h2>
      <p className="hint">Ends every sign-in of yours, on every device, this one included.</p>
      <ErrorMessage error={everywhere.error} />
      <button
        type="button"
        className="danger"
        disabled={everywhere.pending}
        onClick={async () => {
          await everywhere.run({});
          await session.signOut().catch(() => undefined);
        }}
      >
        Sign out everywhere
      </button>
    </Page>
  );
}
