// axe-core on every main screen: no `serious` or `critical` violation (the others are printed).
import AxeBuilder from "@axe-core/playwright";
import type { Page } from "@playwright/test";
import { expect, fx, signIn, test } from "./support";

async function noSeriousViolations(page: Page, screen: string): Promise<void> {
  // Nothing still loading or animating: axe sees the screen as a person would.
  await expect(page.getByRole("status").filter({ hasText: /Loading|Opening/ })).toHaveCount(0);
  const results = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"])
    .analyze();
  const describe = (v: (typeof results.violations)[number]) =>
    `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join("; ")})`;
  const minor = results.violations.filter((v) => v.impact !== "serious" && v.impact !== "critical");
  for (const v of minor) console.log(`axe on ${screen}: ${describe(v)}`);
  const serious = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(serious.map(describe), `axe on ${screen}`).toEqual([]);
}

test("the sign-in page has no serious accessibility violation", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Sign in to Parley" })).toBeVisible();
  await noSeriousViolations(page, "sign-in");
});

test("the chat screens have no serious accessibility violation", async ({ page }) => {
  await signIn(page, fx.a.slug, fx.a.member);
  await expect(page.getByRole("button", { name: "New chat" })).toBeVisible();
  await noSeriousViolations(page, "chats");

  await page.goto(`/chats/${fx.a.searched.id}`);
  await expect(page.getByRole("log", { name: "Messages" }).getByRole("article").first()).toBeVisible();
  await noSeriousViolations(page, "conversation");

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Search" }).click();
  await page.getByRole("textbox", { name: "Search messages" }).fill(fx.a.searched.needle);
  await page.getByRole("textbox", { name: "Search messages" }).press("Enter");
  await expect(page.getByRole("link").filter({ hasText: fx.a.searched.needle }).first()).toBeVisible();
  await noSeriousViolations(page, "search");

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Account" }).click();
  await noSeriousViolations(page, "account");
});

test("the admin sections have no serious accessibility violation", async ({ page }) => {
  await signIn(page, fx.a.slug, fx.a.admin);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin" }).click();
  const tabs = page.getByRole("navigation", { name: "Admin sections" });
  for (const tab of ["Users", "Models & limits", "Keys", "Usage", "Audit"]) {
    await tabs.getByRole("link", { name: tab, exact: true }).click();
    await expect(tabs.getByRole("link", { name: tab, exact: true })).toHaveAttribute("aria-current", "page");
    await noSeriousViolations(page, `admin ${tab}`);
  }
});
