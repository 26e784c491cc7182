// The shell: restores the sign-in from the refresh cookie, then routes by path and role.
import { lazy, type ReactNode, Suspense, useEffect, useState } from "react";
import { Loading } from "./components/ui";
import { closeLive } from "./lib/graphql";
import { useSessionUser } from "./lib/hooks";
import { navigate, useLocation } from "./lib/router";
import { session } from "./lib/session";
import { AccountPage } from "./pages/account/AccountPage";
import { ChatPage } from "./pages/chat/ChatPage";
import { SearchPage } from "./pages/search/SearchPage";
import { SignedInPage, SignInPage } from "./pages/SignInPage";
import { canAdminister, canAudit, isPlatformAdmin, useRoleFollower } from "./lib/roles";

// The admin screens and the documents page load when first opened: most people never open them,
// or not at every visit (docs/web.md, the budget).
const AdminPage = lazy(() => import("./pages/admin/AdminPage").then((m) => ({ default: m.AdminPage })));
const DocumentsPage = lazy(() =>
  import("./pages/documents/DocumentsPage").then((m) => ({ default: m.DocumentsPage })),
);
const TenantsPage = lazy(() =>
  import("./pages/platform/TenantsPage").then((m) => ({ default: m.TenantsPage })),
);

export function App() {
  const user = useSessionUser();
  const [restoring, setRestoring] = useState(true);
  const { path } = useLocation();

  useEffect(() => {
    session
      .resume()
      .catch(() => null)
      .finally(() => setRestoring(false));
  }, []);

  useEffect(() => {
    if (!user) closeLive();
  }, [user]);

  useRoleFollower(user);

  if (restoring) return <Loading label="Opening Parley…" />;
  if (path === "/signed-in") return <SignedInPage />;
  if (!user) return <SignInPage />;

  let page: ReactNode;
  if (path === "/" || path === "/chats" || path.startsWith("/chats/")) page = <ChatPage />;
  else if (path === "/search") page = <SearchPage />;
  else if (path === "/documents") page = <DocumentsPage />;
  else if (path === "/account") page = <AccountPage />;
  else if (path.startsWith("/admin") && (canAdminister(user) || canAudit(user))) page = <AdminPage />;
  else if (path.startsWith("/platform") && isPlatformAdmin(user)) page = <TenantsPage />;
  else page = <NotFound />;

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <a
          className="brand"
          href="/chats"
          onClick={(e) => {
            e.preventDefault();
            navigate("/chats");
          }}
        >
          Parley
        </a>
        <nav aria-label="Main">
          <ul>
            <NavLink to="/chats" current={path === "/" || path.startsWith("/chats")}>
              Chats
            </NavLink>
            <NavLink to="/search" current={path === "/search"}>
              Search
            </NavLink>
            <NavLink to="/documents" current={path === "/documents"}>
              Documents
            </NavLink>
            {(canAdminister(user) || canAudit(user)) && (
              <NavLink to="/admin" current={path.startsWith("/admin")}>
                Admin
              </NavLink>
            )}
            {isPlatformAdmin(user) && (
              <NavLink to="/platform/tenants" current={path.startsWith("/platform")}>
                Tenants
              </NavLink>
            )}
            <NavLink to="/account" current={path === "/account"}>
              Account
            </NavLink>
          </ul>
        </nav>
        <div className="whoami" data-testid="whoami">
          <span>{user.displayName || user.email}</span>
          <span className="role-badge" data-testid="role">
            {user.role.replace("_", " ").toLowerCase()}
          </span>
          <button type="button" className="link" onClick={() => void session.signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        <Suspense fallback={<Loading />}>{page}</Suspense>
      </main>
    </div>
  );
}

function NavLink({ to, current, children }: { to: string; current: boolean; children: ReactNode }) {
  return (
    <li>
      <a
        href={to}
        aria-current={current ? "page" : undefined}
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          navigate(to);
        }}
      >
        {children}
      </a>
    </li>
  );
}

function NotFound() {
  return (
    <section className="page">
      <h1>Not found</h1>
      <p>There is nothing here, or you may not see it.</p>
    </section>
  );
}
