// Users: the tenant's users; admins register users, change roles, deactivate and erase (GDPR).
// Auditors see the list only (policy LIST_USERS vs ADMINISTER).
import { useEffect, useRef, useState } from "react";
import { ConfirmDialog, Empty, ErrorMessage, Field, Form, Loading } from "../../components/ui";
import { graphql } from "../../gql";
import type { Role } from "../../gql/graphql";
import { useMutation, useSessionUser } from "../../lib/hooks";
import { canAdminister, isPlatformAdmin } from "../../lib/roles";
import { usePaged } from "./paged";

const Users = graphql(`
  query Users($first: Int!, $after: String, $afterPosition: Int) {
    users(first: $first, after: $after, afterPosition: $afterPosition) {
      nodes {
        id
        email
        displayName
        role
        active
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const RegisterUser = graphql(`
  mutation RegisterUser($input: RegisterUserInput!) {
    registerUser(input: $input) {
      userId
      position
    }
  }
`);

const ChangeUserRole = graphql(`
  mutation ChangeUserRole($input: ChangeUserRoleInput!) {
    changeUserRole(input: $input) {
      userId
      position
    }
  }
`);

const DeactivateUser = graphql(`
  mutation DeactivateUser($input: DeactivateUserInput!) {
    deactivateUser(input: $input) {
      userId
      position
    }
  }
`);

const EraseUser = graphql(`
  mutation EraseUser($input: EraseUserInput!) {
    eraseUser(input: $input) {
      userId
      position
    }
  }
`);

interface ListedUser {
  id: string;
  email: string;
  displayName: string;
  role: Role;
  active: boolean;
}

export const ROLE_LABELS: Record<Role, string> = {
  MEMBER: "Member",
  AUDITOR: "Auditor",
  TENANT_ADMIN: "Tenant admin",
  PLATFORM_ADMIN: "Platform admin",
};

/** The roles an admin may give: only a platform admin grants platform admin (policy PLATFORM). */
export function grantableRoles(me: Role): Role[] {
  const roles: Role[] = ["MEMBER", "AUDITOR", "TENANT_ADMIN"];
  return me === "PLATFORM_ADMIN" ? [...roles, "PLATFORM_ADMIN"] : roles;
}

/** The read side shows an erased user's e-mail and name as "(erased)" (docs/gdpr.md). */
const ERASED = "(erased)";
export const isErased = (u: { email: string; active: boolean }) => !u.active && u.email === ERASED;

export function UsersSection() {
  const me = useSessionUser();
  const [afterPosition, setAfterPosition] = useState<number | null>(null);
  const users = usePaged(Users, { first: 50, afterPosition }, (r) => r.users);
  const [notice, setNotice] = useState<string | null>(null);
  const [deactivating, setDeactivating] = useState<ListedUser | null>(null);
  const [erasing, setErasing] = useState<ListedUser | null>(null);
  const deactivate = useMutation(DeactivateUser);
  const erase = useMutation(EraseUser);
  const [registering, setRegistering] = useState(false);
  const opener = useRef<HTMLButtonElement>(null);
  if (!me) return null;
  const admin = canAdminister(me);

  /** After a write: read the list again once it includes the write. */
  const written = (position: number, message: string) => {
    setNotice(message);
    setAfterPosition(position);
    if (position === afterPosition) void users.reload();
  };

  const confirmDeactivate = async () => {
    const user = deactivating;
    setDeactivating(null);
    if (!user) return;
    setNotice(null);
    const { deactivateUser } = await deactivate.run({ input: { userId: user.id } });
    written(deactivateUser.position, `${user.email} is deactivated.`);
  };

  const confirmErase = async (user: ListedUser) => {
    setErasing(null);
    setNotice(null);
    const { eraseUser } = await erase.run({ input: { userId: user.id } });
    written(eraseUser.position, `${user.email} is erased: their personal data can no longer be read.`);
  };

  if (registering && admin) {
    return (
      <RegisterForm
        me={me.role}
        onRegistered={written}
        onClose={() => {
          setRegistering(false);
          // Focus returns to the button that opened the form, once it is back.
          setTimeout(() => opener.current?.focus(), 0);
        }}
      />
    );
  }

  return (
    <>
      {admin && (
        // One "Register user" button at a time: this one opens the form, the form's one submits it.
        <div className="section-header">
          <button ref={opener} type="button" className="primary" onClick={() => setRegistering(true)}>
            Register user
          </button>
        </div>
      )}
      {notice && (
        <p className="ok" role="status">
          {notice}
        </p>
      )}
      <ErrorMessage error={deactivate.error ?? erase.error} />
      {users.error && <ErrorMessage error={users.error} />}
      {!users.loaded && !users.error ? (
        <Loading label="Loading users…" />
      ) : users.loaded && users.nodes.length === 0 ? (
        <Empty>No users yet.</Empty>
      ) : (
        users.loaded && (
          <table className="data users" aria-busy={users.loading}>
            <caption className="visually-hidden">Users of your tenant</caption>
            <thead>
              <tr>
                <th scope="col">E-mail</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                {admin && (
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {users.nodes.map((u) => {
                const self = u.id === me.id;
                const erased = isErased(u);
                return (
                  <tr key={u.id} className={u.active ? undefined : "inactive"}>
                    <th scope="row">
                      {u.email}
                      {self && <span className="hint"> (you)</span>}
                    </th>
                    <td>{u.displayName}</td>
                    <td>
                      {admin && !self && u.active && (u.role !== "PLATFORM_ADMIN" || isPlatformAdmin(me)) ? (
                        <RoleEditor user={u} me={me.role} onChanged={written} />
                      ) : (
                        ROLE_LABELS[u.role]
                      )}
                    </td>
                    <td>{erased ? "Erased" : u.active ? "Active" : "Deactivated"}</td>
                    {admin && (
                      <td className="actions">
                        {!self && u.active && (
                          <button type="button" aria-label={`Deactivate ${u.email}`} onClick={() => setDeactivating(u)}>
                            Deactivate
                          </button>
                        )}
                        {!self && !erased && (
                          <button
                            type="button"
                            className="danger-outline"
                            aria-label={`Erase ${u.email}`}
                            onClick={() => setErasing(u)}
                          >
                            Erase
                          </button>
                        )}
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )
      )}
      {users.hasMore && (
        <button type="button" onClick={() => void users.loadMore()} disabled={users.loading}>
          More users
        </button>
      )}

      <ConfirmDialog
        open={deactivating !== null}
        title={`Deactivate ${deactivating?.email ?? ""}?`}
        confirmLabel="Deactivate user"
        danger
        onConfirm={() => void confirmDeactivate().catch(() => undefined)}
        onCancel={() => setDeactivating(null)}
      >
        <p>
          They can no longer sign in or act, and their current sign-ins end. Their chats and data stay as they are, and
          the audit trail keeps everything they did.
        </p>
      </ConfirmDialog>
      {erasing && (
        <EraseDialog
          user={erasing}
          onConfirm={(u) => void confirmErase(u).catch(() => undefined)}
          onCancel={() => setErasing(null)}
        />
      )}
    </>
  );
}

function RoleEditor({
  user,
  me,
  onChanged,
}: {
  user: ListedUser;
  me: Role;
  onChanged: (position: number, message: string) => void;
}) {
  const [role, setRole] = useState<Role>(user.role);
  const change = useMutation(ChangeUserRole);
  const save = async () => {
    const { changeUserRole } = await change.run({ input: { userId: user.id, role } });
    onChanged(changeUserRole.position, `${user.email} is now ${ROLE_LABELS[role].toLowerCase()}.`);
  };
  return (
    <div className="role-editor">
      <select aria-label={`Role for ${user.email}`} value={role} onChange={(e) => setRole(e.target.value as Role)}>
        {grantableRoles(me).map((r) => (
          <option key={r} value={r}>
            {ROLE_LABELS[r]}
          </option>
        ))}
      </select>
      <button
        type="button"
        aria-label={`Save role for ${user.email}`}
        disabled={change.pending || role === user.role}
        onClick={() => void save().catch(() => undefined)}
      >
        Save
      </button>
      <ErrorMessage error={change.error} />
    </div>
  );
}

/** The form to register a user; it takes the list's place while open (so that its "Role" is
 * the only control of that name on the page). */
function RegisterForm({
  me,
  onRegistered,
  onClose,
}: {
  me: Role;
  onRegistered: (position: number, message: string) => void;
  onClose: () => void;
}) {
  const [email, setEmail] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("MEMBER");
  const register = useMutation(RegisterUser);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);

  const submit = async () => {
    const { registerUser } = await register.run({
      input: { email: email.trim(), displayName: displayName.trim(), password, role },
    });
    onRegistered(registerUser.position, `${email.trim()} is registered as ${ROLE_LABELS[role].toLowerCase()}.`);
    onClose();
  };

  return (
    <section className="panel" aria-labelledby="register-heading">
      <h2 id="register-heading">Register a user</h2>
      <Form onSubmit={submit} label="Register a user">
        <div className="settings-grid">
          <Field label="E-mail">
            {(p) => (
              <input {...p} ref={first} type="email" required autoComplete="off" value={email}
                onChange={(e) => setEmail(e.target.value)} />
            )}
          </Field>
          <Field label="Display name">
            {(p) => <input {...p} required autoComplete="off" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />}
          </Field>
          <Field label="Initial password" hint="12 to 1024 characters. Tell it to the user; they can change it under Account.">
            {(p) => (
              <input {...p} type="password" required minLength={12} autoComplete="new-password" value={password}
                onChange={(e) => setPassword(e.target.value)} />
            )}
          </Field>
          <Field label="Role">
            {(p) => (
              <select {...p} value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {grantableRoles(me).map((r) => (
                  <option key={r} value={r}>
                    {ROLE_LABELS[r]}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <ErrorMessage error={register.error} />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={register.pending}>
            Register user
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </Form>
    </section>
  );
}

/** Erasure is for good: the dialog says what it destroys and asks for the e-mail typed out. */
function EraseDialog({
  user,
  onConfirm,
  onCancel,
}: {
  user: ListedUser;
  onConfirm: (user: ListedUser) => void;
  onCancel: () => void;
}) {
  const [typed, setTyped] = useState("");
  const [mismatch, setMismatch] = useState(false);
  return (
    <ConfirmDialog
      open
      title={`Erase ${user.email} for good?`}
      confirmLabel="Erase user for good"
      danger
      onConfirm={() => {
        if (typed.trim() !== user.email) {
          setMismatch(true);
          return;
        }
        onConfirm(user);
      }}
      onCancel={onCancel}
    >
      <p>Erasure (GDPR art. 17) destroys the keys that encrypt this person's data. Then:</p>
      <ul>
        <li>their profile (e-mail address, name) can no longer be read;</li>
        <li>the titles and messages of every chat they started, both their messages and the assistant's replies, are unreadable for good, for everyone, auditors and replays included;</li>
        <li>they are deactivated and can no longer sign in; their e-mail address cannot register again in this tenant;</li>
        <li>the audit chain stays valid: it covers the stored, encrypted data, and it records that the erasure happened, when and by whom.</li>
      </ul>
      <p>
        <strong>This cannot be undone.</strong> Backups taken earlier still hold the data until they expire (see
        docs/gdpr.md).
      </p>
      <div className="field">
        <label htmlFor="erase-confirm">Type {user.email} to confirm</label>
        <input
          id="erase-confirm"
          autoComplete="off"
          spellCheck={false}
          value={typed}
          aria-invalid={mismatch || undefined}
          aria-describedby={mismatch ? "erase-mismatch" : undefined}
          onChange={(e) => {
            setTyped(e.target.value);
            setMismatch(false);
          }}
        />
        {mismatch && (
          <p id="erase-mismatch" className="error" role="alert">
            That is not the user's e-mail address: nothing was erased.
          </p>
        )}
      </div>
    </ConfirmDialog>
  );
}
