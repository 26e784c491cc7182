// Signing in: a wrong password is a typed error on the sign-in page; the right one opens the
// client, whose refresh token lives in an HttpOnly cookie no script can read.
import { expect, fx, screenshot, signIn, test } from "./support";

test("a wrong password shows the typed error and stays on the sign-in page", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Sign in to Parley" })).toBeVisible();
  await page.getByRole("textbox", { name: "Tenant" }).fill(fx.a.slug);
  await page.getByRole("textbox", { name: "E-mail" }).fill(fx.a.member.email);
  await page.getByLabel("Password", { exact: true }).fill("not-the-password");
  await screenshot(page, "sign-in");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();

  const error = page.getByRole("alert");
  await expect(error).toBeVisible();
  await expect(error).toHaveAttribute("data-code", "UNAUTHENTICATED");
  await expect(page.getByRole("navigation", { name: "Main" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Sign in", exact: true })).toBeEnabled();
});

test("signing in opens the chats, and a reload keeps the sign-in", async ({ page }) => {
  await signIn(page, fx.a.slug, fx.a.member);
  await expect(page).toHaveURL(/\/chats$/);
  await expect(page.getByTestId("role")).toHaveText("member");
  await page.reload();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
  await expect(page.getByTestId("role")).toHaveText("member");
});

test("the refresh cookie is HttpOnly and invisible to document.cookie", async ({ page, context }) => {
  await signIn(page, fx.a.slug, fx.a.member);
  const cookies = await context.cookies();
  const refresh = cookies.find((c) => c.name === "parley_refresh");
  expect(refresh, `cookies: ${cookies.map((c) => c.name).join(", ")}`).toBeDefined();
  expect(refresh?.httpOnly).toBe(true);
  expect(refresh?.path).toBe("/auth/session");
  expect(refresh?.sameSite).toBe("Strict");
  const visible = await page.evaluate(() => document.cookie);
  expect(visible).not.toContain("parley_refresh");
  expect(visible).not.toContain(refresh?.value ?? "<none>");
  // Nor is the access token kept where a script of another page load could find it.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  expect(stored).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to Parley" })).toBeVisible();
  expect((await context.cookies()).find((c) => c.name === "parley_refresh")).toBeUndefined();
});
