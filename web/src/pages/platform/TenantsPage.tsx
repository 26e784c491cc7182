// The platform's tenants (platform admins): list, create with a first admin, rename any,
// deactivate others.
import { useRef, useState } from "react";
import { ConfirmDialog, Empty, ErrorMessage, Field, Form, Loading, Page } from "../../components/ui";
import { graphql } from "../../gql";
import { request } from "../../lib/graphql";
import { useMutation, useSessionUser } from "../../lib/hooks";
import { useTitle } from "../../lib/router";
import { usePaged } from "../admin/paged";

const Tenants = graphql(`
  query Tenants($first: Int!, $after: String) {
    tenants(first: $first, after: $after) {
      nodes {
        id
        name
        slug
        active
        defaultModel
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

// `tenants` takes no afterPosition: any read with one waits until the read side has a write.
const CaughtUp = graphql(`
  query TenantsCaughtUp($afterPosition: Int) {
    tenant(afterPosition: $afterPosition) {
      id
    }
  }
`);

const CreateTenant = graphql(`
  mutation CreateTenant($input: CreateTenantInput!) {
    createTenant(input: $input) {
      tenantId
      adminUserId
      position
    }
  }
`);

const RenameTenant = graphql(`
  mutation RenameTenant($input: RenameTenantInput!) {
    renameTenant(input: $input) {
      tenantId
      position
    }
  }
`);

const DeactivateTenant = graphql(`
  mutation DeactivateTenant($input: DeactivateTenantInput!) {
    deactivateTenant(input: $input) {
      tenantId
      position
    }
  }
`);

interface ListedTenant {
  id: string;
  name: string;
  slug: string;
  active: boolean;
  defaultModel: string;
}

/** A slug from a name, as a suggestion: lowercase letters, digits and inner hyphens, ≤ 63. */
export function slugFrom(name: string): string {
  return name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/g, "");
}

export function TenantsPage() {
  useTitle("Tenants");
  const me = useSessionUser();
  const tenants = usePaged(Tenants, { first: 50 }, (r) => r.tenants);
  const deactivate = useMutation(DeactivateTenant);
  const [notice, setNotice] = useState<string | null>(null);
  const [deactivating, setDeactivating] = useState<ListedTenant | null>(null);
  const [renaming, setRenaming] = useState<string | null>(null);

  const refresh = async (position: number) => {
    await request(CaughtUp, { afterPosition: position }).catch(() => undefined);
    await tenants.reload();
  };

  const confirmDeactivate = async () => {
    const tenant = deactivating;
    setDeactivating(null);
    if (!tenant) return;
    setNotice(null);
    const { deactivateTenant } = await deactivate.run({ input: { tenantId: tenant.id } });
    setNotice(`${tenant.name} is deactivated: its users are locked out.`);
    await refresh(deactivateTenant.position);
  };

  return (
    <Page title="Tenants">
      <CreateTenantForm
        onCreated={async (message, position) => {
          setNotice(message);
          await refresh(position);
        }}
      />
      {notice && (
        <p className="ok" role="status">
          {notice}
        </p>
      )}
      <ErrorMessage error={deactivate.error} />
      <ErrorMessage error={tenants.error} />
      {!tenants.loaded && !tenants.error ? (
        <Loading label="Loading tenants…" />
      ) : tenants.loaded && tenants.nodes.length === 0 ? (
        <Empty>No tenants yet.</Empty>
      ) : (
        tenants.loaded && (
          <table className="data" aria-busy={tenants.loading}>
            <caption className="visually-hidden">Tenants of the platform</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Slug</th>
                <th scope="col">Default model</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tenants.nodes.map((t) => {
                const own = t.id === me?.tenantId;
                return (
                  <tr key={t.id} className={t.active ? undefined : "inactive"}>
                    <th scope="row">
                      {renaming === t.id ? (
                        <RenameForm
                          tenant={t}
                          onDone={async (done) => {
                            setRenaming(null);
                            if (done) {
                              setNotice(done.message);
                              await refresh(done.position);
                            }
                          }}
                        />
                      ) : (
                        <>
                          {t.name}
                          {own && <span className="hint"> (yours)</span>}
                        </>
                      )}
                    </th>
                    <td>
                      <code>{t.slug}</code>
                    </td>
                    <td>{t.defaultModel}</td>
                    <td>{t.active ? "Active" : "Deactivated"}</td>
                    <td className="actions">
                      {/* Deactivating one's own tenant is refused. */}
                      {renaming !== t.id && (
                        <button type="button" aria-label={`Rename ${t.name}`} onClick={() => setRenaming(t.id)}>
                          Rename
                        </button>
                      )}
                      {!own && t.active && (
                        <button type="button" aria-label={`Deactivate ${t.name}`} onClick={() => setDeactivating(t)}>
                          Deactivate
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )
      )}
      {tenants.hasMore && (
        <button type="button" onClick={() => void tenants.loadMore()} disabled={tenants.loading}>
          More tenants
        </button>
      )}
      <ConfirmDialog
        open={deactivating !== null}
        title={`Deactivate ${deactivating?.name ?? ""}?`}
        confirmLabel="Deactivate tenant"
        danger
        onConfirm={() => void confirmDeactivate().catch(() => undefined)}
        onCancel={() => setDeactivating(null)}
      >
        <p>
          Every user of {deactivating?.name} ({deactivating?.slug}) is locked out at once: they can no longer sign in,
          read or write, and its API keys stop working. Its data and audit trail are kept.
        </p>
      </ConfirmDialog>
    </Page>
  );
}

function RenameForm({
  tenant,
  onDone,
}: {
  tenant: ListedTenant;
  onDone: (done: { message: string; position: number } | null) => void;
}) {
  const [name, setName] = useState(tenant.name);
  const rename = useMutation(RenameTenant);
  const submit = async () => {
    const { renameTenant } = await rename.run({ input: { tenantId: tenant.id, name: name.trim() } });
    onDone({ message: `Renamed to ${name.trim()}.`, position: renameTenant.position });
  };
  return (
    <Form onSubmit={submit} label={`Rename ${tenant.name}`}>
      <div className="inline-form">
        <label htmlFor="tenant-rename" className="visually-hidden">
          New name for {tenant.name}
        </label>
        <input id="tenant-rename" required autoFocus value={name} onChange={(e) => setName(e.target.value)} />
        <button type="submit" className="primary" disabled={rename.pending}>
          Save name
        </button>
        <button type="button" onClick={() => onDone(null)}>
          Cancel
        </button>
      </div>
      <ErrorMessage error={rename.error} />
    </Form>
  );
}

function CreateTenantForm({ onCreated }: { onCreated: (message: string, position: number) => Promise<void> }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [slugEdited, setSlugEdited] = useState(false);
  const [adminEmail, setAdminEmail] = useState("");
  const [adminName, setAdminName] = useState("");
  const [adminPassword, setAdminPassword] = useState("");
  const create = useMutation(CreateTenant);
  const first = useRef<HTMLInputElement>(null);
  const opener = useRef<HTMLButtonElement>(null);

  const close = () => {
    setOpen(false);
    setName("");
    setSlug("");
    setSlugEdited(false);
    setAdminEmail("");
    setAdminName("");
    setAdminPassword("");
    create.reset();
    setTimeout(() => opener.current?.focus(), 0);
  };

  const submit = async () => {
    const { createTenant } = await create.run({
      input: {
        name: name.trim(),
        slug: slug.trim(),
        adminEmail: adminEmail.trim(),
        adminPassword,
        ...(adminName.trim() ? { adminDisplayName: adminName.trim() } : {}),
      },
    });
    const message = `${name.trim()} is created; ${adminEmail.trim()} signs in to it with the slug ${slug.trim()}.`;
    close();
    await onCreated(message, createTenant.position);
  };

  if (!open) {
    return (
      <div className="section-header">
        <button
          ref={opener}
          type="button"
          className="primary"
          aria-expanded={false}
          onClick={() => {
            setOpen(true);
            setTimeout(() => first.current?.focus(), 0);
          }}
        >
          Create tenant
        </button>
      </div>
    );
  }
  return (
    <section className="panel" aria-labelledby="create-tenant-heading">
      <h2 id="create-tenant-heading">Create a tenant</h2>
      <Form onSubmit={submit} label="Create a tenant">
        <div className="settings-grid">
          <Field label="Tenant name">
            {(p) => (
              <input
                {...p}
                ref={first}
                required
                value={name}
                onChange={(e) => {
                  setName(e.target.value);
                  if (!slugEdited) setSlug(slugFrom(e.target.value));
                }}
              />
            )}
          </Field>
          <Field label="Slug" hint="What its users type to sign in: lowercase letters, digits and inner hyphens.">
            {(p) => (
              <input
                {...p}
                required
                pattern="[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?"
                spellCheck={false}
                value={slug}
                onChange={(e) => {
                  setSlug(e.target.value);
                  setSlugEdited(true);
                }}
              />
            )}
          </Field>
          <Field label="First admin's e-mail">
            {(p) => (
              <input {...p} type="email" required autoComplete="off" value={adminEmail} onChange={(e) => setAdminEmail(e.target.value)} />
            )}
          </Field>
          <Field label="First admin's name" hint="Optional; “Administrator” if empty.">
            {(p) => <input {...p} autoComplete="off" value={adminName} onChange={(e) => setAdminName(e.target.value)} />}
          </Field>
          <Field label="First admin's password" hint="12 to 1024 characters.">
            {(p) => (
              <input {...p} type="password" required minLength={12} autoComplete="new-password" value={adminPassword}
                onChange={(e) => setAdminPassword(e.target.value)} />
            )}
          </Field>
        </div>
        <ErrorMessage error={create.error} />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={create.pending}>
            Create tenant
          </button>
          <button type="button" onClick={close}>
            Cancel
          </button>
        </div>
      </Form>
    </section>
  );
}
