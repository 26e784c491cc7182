import { describe, expect, it } from "vitest";
import { slugFrom } from "./TenantsPage";

describe("slugFrom", () => {
  it("suggests lowercase letters, digits and inner hyphens", () => {
    expect(slugFrom("Acme Corp.")).toBe("acme-corp");
    expect(slugFrom("  Zürich Bank & Co  ")).toBe("zurich-bank-co");
    expect(slugFrom("---")).toBe("");
  });

  it("stays within 63 characters without a trailing hyphen", () => {
    const slug = slugFrom(`${"a".repeat(62)} b`);
    expect(slug.length).toBeLessThanOrEqual(63);
    expect(slug.endsWith("-")).toBe(false);
  });
});
