// What every browser test shares: the fixtures tests/test_web_e2e.py created, signing in through
// the sign-in page, screenshots for docs/web, axe-core on a screen, and a watch on every page for
// Content-Security-Policy violations (a test fails when any page of its browser context reports one).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import AxeBuilder from "@axe-core/playwright";
import {
  type Browser,
  type BrowserContext,
  type ConsoleMessage,
  type Page,
  test as base,
  expect,
} from "@playwright/test";

export interface User {
  id?: string;
  email: string;
  password: string;
  name: string;
}

export interface Fixtures {
  a: {
    slug: string;
    admin: User;
    member: User;
    auditor: User;
    promoted: User;
    audited: { id: string; title: string; before: string; after: string; asOf: string };
    searched: { id: string; needle: string; messageId: string };
    /** The person tests/oidc_issuer.py signs in for tenant A (unknown to Parley until then). */
    oidc: { issuer: string; email: string; name: string; role: string };
  };
  b: {
    slug: string;
    member: User;
    chat: { id: string; title: string; secret: string };
  };
}

function load(): Fixtures {
  const path = process.env.PARLEY_E2E_FIXTURES;
  if (!path) throw new Error("PARLEY_E2E_FIXTURES is not set: run the tests through pytest");
  return JSON.parse(readFileSync(path, "utf8")) as Fixtures;
}

export const fx = load();

/** In the page before any of its scripts: CSP violations become console errors we can see. */
const REPORT_CSP = () => {
  document.addEventListener("securitypolicyviolation", (e) => {
    console.error(
      `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} ` +
        `(${e.sourceFile}:${e.lineNumber})`,
    );
  });
};

const isCspViolation = (text: string) =>
  text.startsWith("CSP violation") || /Content Security Policy/i.test(text);

/** Watch a browser context: its pages' CSP violations land in `violations`. */
export async function watch(context: BrowserContext, violations: string[]): Promise<void> {
  await context.addInitScript(REPORT_CSP);
  context.on("console", (message: ConsoleMessage) => {
    if (isCspViolation(message.text())) {
      violations.push(`${message.page()?.url() ?? "?"}: ${message.text()}`);
    }
  });
  context.on("weberror", (error) => {
    console.log(`page error: ${error.error().message}`);
  });
}

interface Shared {
  cspViolations: string[];
  /** Another signed-out browser context (another person, or another device), watched too. */
  another: () => Promise<Page>;
}

export const test = base.extend<Shared>({
  cspViolations: async ({ context }, use) => {
    const violations: string[] = [];
    await watch(context, violations);
    await use(violations);
    expect(violations, "Content-Security-Policy violations").toEqual([]);
  },
  // Every test gets the CSP watch, whether it names it or not.
  page: async ({ page, cspViolations }, use) => {
    void cspViolations;
    await use(page);
  },
  another: async ({ browser, cspViolations }, use) => {
    const contexts: BrowserContext[] = [];
    await use(async () => {
      const context = await newContext(browser);
      await watch(context, cspViolations);
      contexts.push(context);
      return context.newPage();
    });
    for (const context of contexts) await context.close();
  },
});

async function newContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({
    baseURL: process.env.PARLEY_E2E_BASE_URL,
    viewport: { width: 1280, height: 800 },
    colorScheme: "light",
    locale: "en-GB",
    timezoneId: "UTC",
  });
}

export { expect };

/** Sign in through the sign-in page, as a person would; returns once the shell shows. */
export async function signIn(page: Page, tenant: string, user: User, path = "/"): Promise<void> {
  await page.goto(path);
  await page.getByRole("textbox", { name: "Tenant" }).fill(tenant);
  await page.getByRole("textbox", { name: "E-mail" }).fill(user.email);
  await page.getByLabel("Password", { exact: true }).fill(user.password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
}

/** A PNG of the page for docs/web.md, into PARLEY_E2E_SCREENSHOTS (or the test's output). */
export async function screenshot(page: Page, name: string, fullPage = false): Promise<void> {
  const directory = process.env.PARLEY_E2E_SCREENSHOTS ?? test.info().outputDir;
  // Caret and animations off: the same screen gives the same picture.
  await page.screenshot({ path: join(directory, `${name}.png`), animations: "disabled", caret: "hide", fullPage });
}

/** Percentile of `values` (nearest rank). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** axe-core on the screen as it is: no `serious` or `critical` violation (the others are printed). */
export async function noSeriousViolations(page: Page, screen: string): Promise<void> {
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
