// Signing in through the tenant's identity provider (OpenID Connect, docs/oidc.md), as a person
// would: the sign-in page sends the browser to Parley's login, on to the issuer
// (tests/oidc_issuer.py, which signs its one person in without asking), back through Parley's
// callback to /signed-in, which trades the one-time code for the cookie session.
import { type Request } from "@playwright/test";
import { expect, fx, test } from "./support";

const OIDC_BUTTON = "Sign in with your organisation's identity provider";

test("the identity provider signs a new person in as a member, and a reload keeps it", async ({
  page,
  context,
}) => {
  const { slug, oidc } = fx.a;
  const hops: URL[] = [];
  page.on("request", (r: Request) => {
    // Navigations, and the page's fetch that starts the sign-in (it asks Parley for JSON).
    const hop = r.isNavigationRequest() || r.resourceType() === "fetch";
    if (hop && r.frame() === page.mainFrame()) hops.push(new URL(r.url()));
  });
  await page.goto("/");
  await page.getByRole("textbox", { name: "Tenant" }).fill(slug);
  const exchanged = page.waitForResponse(
    (r) => r.url().endsWith("/auth/session/oidc") && r.request().method() === "POST",
  );
  await page.getByRole("button", { name: OIDC_BUTTON }).click();

  expect((await exchanged).status()).toBe(200);
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
  await expect(page).toHaveURL(/\/chats$/);
  await expect(page.getByTestId("whoami")).toContainText(oidc.name);
  await expect(page.getByTestId("role")).toHaveText(oidc.role.toLowerCase());

  // The way there: Parley's login with the page's state and S256 challenge, the issuer, Parley's
  // callback, and /signed-in with a one-time code (no token in any URL).
  const origin = new URL(page.url()).origin;
  const login = hops.find((u) => u.pathname === `/auth/oidc/${slug}/login`);
  expect(login, hops.join("\n")).toBeDefined();
  expect(login?.searchParams.get("redirect_uri")).toBe(`${origin}/signed-in`);
  expect(login?.searchParams.get("code_challenge_method")).toBe("S256");
  expect(login?.searchParams.get("code_challenge")).toMatch(/^[\w-]{43}$/);
  const authorize = hops.find((u) => u.origin === oidc.issuer && u.pathname === "/authorize");
  expect(authorize?.searchParams.get("redirect_uri")).toBe(`${origin}/auth/oidc/${slug}/callback`);
  expect(hops.some((u) => u.origin === origin && u.pathname === `/auth/oidc/${slug}/callback`)).toBe(true);
  const landed = hops.find((u) => u.pathname === "/signed-in");
  expect(landed?.searchParams.get("state")).toBe(login?.searchParams.get("state"));
  expect(landed?.searchParams.get("code")).toBeTruthy();
  for (const hop of hops) expect(hop.href).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);

  // The refresh token in the HttpOnly cookie; the sign-in's binding cookie and pending state gone.
  const cookies = await context.cookies();
  const refresh = cookies.find((c) => c.name === "parley_refresh");
  expect(refresh?.httpOnly, `cookies: ${cookies.map((c) => c.name).join(", ")}`).toBe(true);
  expect(cookies.find((c) => c.name === "parley_oidc")).toBeUndefined();
  expect(await page.evaluate(() => sessionStorage.getItem("parley.oidc"))).toBeNull();

  await page.reload();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
  await expect(page.getByTestId("whoami")).toContainText(oidc.name);
  await expect(page.getByTestId("role")).toHaveText(oidc.role.toLowerCase());

  // The one-time code was spent: opening /signed-in again (history, a copied link) signs in nobody.
  await page.goto(landed?.href ?? "/signed-in");
  await expect(page.getByRole("alert")).toBeVisible();
  await expect(page.getByRole("link", { name: "Back to sign-in" })).toBeVisible();
});

test("a tenant without an identity provider says so on the sign-in page", async ({ page }) => {
  await page.goto("/");
  await page.getByRole("textbox", { name: "Tenant" }).fill(fx.b.slug);
  await page.getByRole("button", { name: OIDC_BUTTON }).click();
  const error = page.getByRole("alert");
  await expect(error).toHaveAttribute("data-code", "NOT_FOUND");
  await expect(error).toContainText("does not sign in through an identity provider");
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("heading", { name: "Sign in to Parley" })).toBeVisible();
  await expect(page.getByRole("button", { name: OIDC_BUTTON })).toBeEnabled();
});
