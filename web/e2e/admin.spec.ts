// The admin console: a tenant admin changes a member's role and that member's open client follows
// without a reload; an auditor replays a chat as it was at an earlier time.
import { expect, fx, screenshot, signIn, test } from "./support";

test("an admin changes a member's role and the member's client follows within 15 s", async ({
  page,
  another,
}) => {
  const { promoted } = fx.a;
  // The member, signed in elsewhere: no Admin link yet.
  const member = await another();
  await signIn(member, fx.a.slug, promoted);
  await expect(member.getByTestId("role")).toHaveText("member");
  const mainNav = member.getByRole("navigation", { name: "Main" });
  await expect(mainNav.getByRole("link", { name: "Admin" })).toHaveCount(0);

  await signIn(page, fx.a.slug, fx.a.admin);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin" }).click();
  await page.getByRole("navigation", { name: "Admin sections" }).getByRole("link", { name: "Users" }).click();
  const row = page.getByRole("row").filter({ hasText: promoted.email });
  await expect(row).toBeVisible();
  await expect(page.getByRole("row").filter({ hasText: fx.a.auditor.email })).toBeVisible();
  await screenshot(page, "admin-users");

  await page.getByRole("combobox", { name: `Role for ${promoted.email}` }).selectOption("TENANT_ADMIN");
  await page.getByRole("button", { name: `Save role for ${promoted.email}` }).click();
  await expect(page.getByRole("status").filter({ hasText: `${promoted.email} is now tenant admin` })).toBeVisible();

  // The member's client re-reads `me` every 10 s (and on focus): no reload, no focus change here.
  await expect(member.getByTestId("role")).toHaveText("tenant admin", { timeout: 15_000 });
  await expect(mainNav.getByRole("link", { name: "Admin" })).toBeVisible();
});

test("the usage section shows the tenant's figures", async ({ page }) => {
  await signIn(page, fx.a.slug, fx.a.admin, "/admin/usage");
  await expect(page.getByRole("heading", { name: "Usage", exact: true })).toBeVisible();
  await expect(page.getByRole("term").filter({ hasText: "Messages sent" })).toBeVisible();
  await expect(page.getByText("Loading", { exact: false })).toHaveCount(0);
  await screenshot(page, "usage", true);
});

test("an auditor opens a chat as it was at an earlier time", async ({ page }) => {
  const { audited } = fx.a;
  await signIn(page, fx.a.slug, fx.a.auditor);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin" }).click();
  await page.getByRole("navigation", { name: "Admin sections" }).getByRole("link", { name: "Audit" }).click();
  await page.getByRole("textbox", { name: "Chat id" }).fill(audited.id);
  // A datetime-local input (seconds shown: step 1); its value drops ":00" seconds.
  await page.getByLabel("As of").fill(audited.asOf.replace(/:00$/, ""));
  await page.getByRole("button", { name: "Show chat as of" }).click();

  const snapshot = page.getByRole("list", { name: "Messages at that time" });
  await expect(page.getByRole("heading", { name: audited.title })).toBeVisible();
  await expect(snapshot.getByText(audited.before, { exact: true })).toBeVisible();
  await expect(snapshot).not.toContainText(audited.after);
  await screenshot(page, "audit", true);

  // Now: the later message is there too.
  const now = new Date(Date.now() + 2_000).toISOString().slice(0, 19);
  await page.getByLabel("As of").fill(now);
  await page.getByRole("button", { name: "Show chat as of" }).click();
  await expect(snapshot.getByText(audited.after, { exact: true })).toBeVisible();
});
