// axe-core on every main screen: no `serious` or `critical` violation (the others are printed).
import { expect, fx, noSeriousViolations, signIn, test } from "./support";

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
