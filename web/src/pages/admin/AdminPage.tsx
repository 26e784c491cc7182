// The admin console: one page, its sections as tabs that are links (/admin/users, …), shown by
// role (sections.ts). The server remains the authority: a refusal shows as FORBIDDEN.
import { useEffect } from "react";
import { Empty, Page } from "../../components/ui";
import { useSessionUser } from "../../lib/hooks";
import { navigate, useLocation, useTitle } from "../../lib/router";
import { AuditSection } from "./AuditSection";
import { KeysSection } from "./KeysSection";
import { ModelsSection } from "./ModelsSection";
import { defaultSection, SECTIONS, type SectionId, sectionOf, sectionsFor } from "./sections";
import { UsageSection } from "./UsageSection";
import { UsersSection } from "./UsersSection";

export function AdminPage() {
  const user = useSessionUser();
  const { path } = useLocation();
  const role = user?.role ?? "MEMBER";
  const allowed = sectionsFor(role);
  const named = sectionOf(path);
  const fallback = defaultSection(role);
  const current = named !== null && named !== "unknown" && allowed.includes(named) ? named : null;
  const label = SECTIONS.find((s) => s.id === current)?.label;
  useTitle(label ? `${label} · Admin` : "Admin");

  useEffect(() => {
    // `/admin`, or a section this role does not have (e.g. after a role change): the default.
    if (named !== "unknown" && current === null && fallback) {
      navigate(`/admin/${fallback}`, { replace: true });
    }
  }, [named, current, fallback]);

  if (!user) return null;
  return (
    <Page title={label ? `Admin: ${label}` : "Admin"}>
      <nav aria-label="Admin sections">
        <ul className="tabs">
          {SECTIONS.filter((s) => allowed.includes(s.id)).map((s) => (
            <li key={s.id}>
              <a
                href={`/admin/${s.id}`}
                aria-current={s.id === current ? "page" : undefined}
                onClick={(e) => {
                  if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                  e.preventDefault();
                  navigate(`/admin/${s.id}`);
                }}
              >
                {s.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {named === "unknown" ? <Empty>There is no such admin section.</Empty> : current && <Section id={current} />}
    </Page>
  );
}

function Section({ id }: { id: SectionId }) {
  switch (id) {
    case "users":
      return <UsersSection />;
    case "models":
      return <ModelsSection />;
    case "keys":
      return <KeysSection />;
    case "usage":
      return <UsageSection />;
    case "audit":
      return <AuditSection />;
  }
}
