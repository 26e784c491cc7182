// The browser tests (web/e2e) against a real `parley serve`: tests/test_web_e2e.py starts the
// server, creates the tenants and users, and runs `npx playwright test` with
// PARLEY_E2E_BASE_URL and PARLEY_E2E_FIXTURES set (docs/web.md, "Tests"). Debian's Chromium, not
// Playwright's download (unreachable here): PARLEY_CHROMIUM names another binary.
import { defineConfig } from "@playwright/test";

const baseURL = process.env.PARLEY_E2E_BASE_URL;
if (!baseURL) {
  throw new Error(
    "PARLEY_E2E_BASE_URL is not set: run the browser tests through pytest " +
      "(.venv/bin/pytest tests/test_web_e2e.py), which starts Parley and its fixtures",
  );
}

export default defineConfig({
  testDir: "e2e",
  outputDir: process.env.PARLEY_E2E_OUTPUT ?? "test-results",
  // One server, one browser, tests in file order: deterministic on a 2-core CI machine.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: true,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list", { printSteps: false }]],
  use: {
    baseURL,
    screenshot: "only-on-failure",
    trace: "off",
    video: "off",
    viewport: { width: 1280, height: 800 },
    colorScheme: "light",
    locale: "en-GB",
    timezoneId: "UTC",
    launchOptions: {
      executablePath: process.env.PARLEY_CHROMIUM ?? "/usr/bin/chromium",
      args: ["--no-sandbox"],
    },
  },
});
