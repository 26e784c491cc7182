// Which admin sections a role sees. The server decides (domain/policy.py); this only leaves out
// what it would refuse: auditors list users but change nothing, see no model settings, keys or
// model gateway; tenant admins do not read the audit trail (its public keys and how to verify it
// are for everyone).
import type { Role } from "../../lib/session";

export type SectionId = "users" | "models" | "keys" | "usage" | "audit";

export const SECTIONS: { id: SectionId; label: string }[] = [
  { id: "users", label: "Users" },
  { id: "models", label: "Models & limits" },
  { id: "keys", label: "Keys" },
  { id: "usage", label: "Usage" },
  { id: "audit", label: "Audit" },
];

const BY_ROLE: Record<Role, SectionId[]> = {
  PLATFORM_ADMIN: ["users", "models", "keys", "usage", "audit"],
  TENANT_ADMIN: ["users", "models", "keys", "usage", "audit"],
  AUDITOR: ["users", "usage", "audit"],
  MEMBER: [],
};

export function sectionsFor(role: Role): SectionId[] {
  return BY_ROLE[role];
}

/** Where `/admin` leads: the first section the role has. */
export function defaultSection(role: Role): SectionId | null {
  return role === "AUDITOR" ? "audit" : (BY_ROLE[role][0] ?? null);
}

/** The section a path names (`/admin/usage` → usage); null for `/admin` itself. */
export function sectionOf(path: string): SectionId | "unknown" | null {
  const rest = path.replace(/^\/admin\/?/, "").split("/")[0];
  if (!rest) return null;
  return SECTIONS.some((s) => s.id === rest) ? (rest as SectionId) : "unknown";
}

/** Roles that read the audit log and replay chats (policy AUDIT). */
export const readsAuditTrail = (role: Role) => role === "AUDITOR" || role === "PLATFORM_ADMIN";
