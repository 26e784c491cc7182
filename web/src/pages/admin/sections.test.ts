import { describe, expect, it } from "vitest";
import { defaultSection, readsAuditTrail, sectionOf, sectionsFor } from "./sections";

describe("admin sections", () => {
  it("admins see every section and start with users", () => {
    expect(sectionsFor("TENANT_ADMIN")).toEqual(["users", "models", "keys", "usage", "audit"]);
    expect(defaultSection("TENANT_ADMIN")).toBe("users");
    expect(defaultSection("PLATFORM_ADMIN")).toBe("users");
  });

  it("auditors see users, usage and audit, and start with audit", () => {
    expect(sectionsFor("AUDITOR")).toEqual(["users", "usage", "audit"]);
    expect(defaultSection("AUDITOR")).toBe("audit");
  });

  it("members have none", () => {
    expect(sectionsFor("MEMBER")).toEqual([]);
    expect(defaultSection("MEMBER")).toBeNull();
  });

  it("reads the section from the path", () => {
    expect(sectionOf("/admin")).toBeNull();
    expect(sectionOf("/admin/")).toBeNull();
    expect(sectionOf("/admin/usage")).toBe("usage");
    expect(sectionOf("/admin/nothing")).toBe("unknown");
  });

  it("only auditors and platform admins read the audit trail (policy AUDIT)", () => {
    expect(readsAuditTrail("AUDITOR")).toBe(true);
    expect(readsAuditTrail("PLATFORM_ADMIN")).toBe(true);
    expect(readsAuditTrail("TENANT_ADMIN")).toBe(false);
  });
});
