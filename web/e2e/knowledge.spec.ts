// Knowledge in the browser: a Markdown file uploaded on the documents page (beside a file Parley
// refuses) becomes ready, is found by the documents search, grounds an echo chat whose reply
// cites the right passage, and once deleted leaves that citation erased.
import type { Page } from "@playwright/test";
import { expect, fx, noSeriousViolations, screenshot, signIn, test } from "./support";

// Three sections of about 500 characters: each becomes a passage of its own ("Staff handbook >
// Expenses"), as the passages of a PDF's pages do in tests/test_knowledge_api.py.
const HANDBOOK = [
  "# Staff handbook",
  "",
  "## Travel",
  "",
  "Employees book trains for journeys under four hours. Flights need a manager's approval before " +
    "booking. Hotels are booked through the travel desk, which keeps a list of approved hotels in every " +
    "city where the company has an office. Taxis are allowed after nine in the evening or when public " +
    "transport is not running. First class is never reimbursed, whatever the length of the journey. " +
    "Travel insurance is provided by the company for every business trip abroad; claims go to the travel desk.",
  "",
  "## Expenses",
  "",
  "Receipts for expenses must be submitted within thirty days through the finance portal. Late claims " +
    "are refused unless a director approves them. Meals are reimbursed up to a daily allowance that " +
    "depends on the country. Alcohol is never reimbursed. Each claim needs the original receipt or a " +
    "clear photograph of it. Card statements alone are not accepted as proof of an expense. " +
    "Reimbursements are paid with the next monthly salary once the employee's manager has approved the claim.",
  "",
  "## Security",
  "",
  "Laptops are encrypted with full-disk encryption and locked after five minutes. Passwords are at " +
    "least sixteen characters long and never reused between services. Lost devices are reported to the " +
    "service desk within one hour of noticing the loss. Visitors sign in at reception and are " +
    "accompanied at all times inside the offices. Confidential papers go in the locked shredding bins on " +
    "every floor, not in ordinary waste.",
  "",
].join("\n");

/** A PNG's signature under a PDF's name: Parley reads the bytes and refuses it. */
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64)]);
const QUESTION = "How long do I have to hand in my receipts?";
const ERASED = "passage erased (document deleted)";

const go = (page: Page, link: string) =>
  page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link, exact: true }).click();
const reply = (page: Page) =>
  page.getByRole("log", { name: "Messages" }).getByRole("article", { name: "Assistant message" }).last();

test("a document is uploaded, cited in a grounded reply, and erased from it once deleted", async ({ page }) => {
  await signIn(page, fx.a.slug, fx.a.member);
  await go(page, "Documents");
  await expect(page.getByRole("heading", { name: "Documents", level: 1 })).toBeVisible();
  await page.getByLabel("Choose files to upload").setInputFiles([
    { name: "handbook.md", mimeType: "text/markdown", buffer: Buffer.from(HANDBOOK) },
    { name: "photo.pdf", mimeType: "application/pdf", buffer: PNG },
  ]);
  const uploads = page.getByRole("list", { name: "Uploads" });
  await expect(uploads.getByRole("alert")).toContainText("photo.pdf: The file is a PNG image");
  const row = page.getByRole("row", { name: /handbook\.md/ });
  await expect(row.getByText("Ready", { exact: true })).toBeVisible({ timeout: 30_000 });
  await expect(row).toContainText("3 passages");
  await screenshot(page, "documents");
  await noSeriousViolations(page, "documents");

  // The documents search finds the passage.
  await go(page, "Search");
  await page.getByRole("navigation", { name: "Search in" }).getByRole("link", { name: "Documents" }).click();
  const box = page.getByRole("textbox", { name: "Search documents" });
  await box.fill("receipts within thirty days");
  await box.press("Enter");
  const best = page.getByRole("article").first();
  await expect(best).toContainText("Staff handbook > Expenses");
  await expect(best).toContainText("thirty days");
  await screenshot(page, "search-documents");
  await noSeriousViolations(page, "documents search");

  // A chat grounded in it: the reply cites the passage that answers, as [1].
  await go(page, "Chats");
  await page.getByRole("button", { name: "New chat" }).click();
  await expect(page).toHaveURL(/\/chats\/[0-9a-f-]{36}$/);
  const chatUrl = page.url();
  await page.getByRole("button", { name: "Knowledge" }).click();
  const picker = page.getByRole("dialog", { name: "Ground this chat in documents" });
  await picker.getByRole("checkbox", { name: "handbook.md" }).check();
  await screenshot(page, "knowledge");
  await noSeriousViolations(page, "the knowledge picker");
  await picker.getByRole("button", { name: "Save" }).click();
  await expect(picker).toHaveCount(0);
  await expect(page.getByTestId("knowledge")).toHaveText("Knowledge: handbook.md");

  await page.getByRole("textbox", { name: "Message" }).fill(QUESTION);
  await page.getByRole("button", { name: "Send" }).click();
  await expect(reply(page)).toContainText("The passages I was given");
  const sources = reply(page).getByRole("group", { name: "Sources" });
  const first = sources.getByRole("listitem").first();
  await expect(first).toContainText("[1] handbook.md — Staff handbook > Expenses");
  await expect(first).toHaveClass(/citation-cited/);
  // The reply's own [1] opens the passage.
  await reply(page).getByRole("link", { name: "Source 1" }).first().click();
  await expect(first.getByText(/submitted within thirty days/)).toBeVisible();
  await screenshot(page, "citations");
  await noSeriousViolations(page, "a grounded reply");

  // Deleted: the confirmation says what happens to the citations, and the reply then shows it.
  await go(page, "Documents");
  await row.getByRole("button", { name: "Delete handbook.md" }).click();
  const confirm = page.getByRole("dialog", { name: "Delete “handbook.md”?" });
  await expect(confirm).toContainText(ERASED);
  await confirm.getByRole("button", { name: "Delete document" }).click();
  await expect(row).toHaveCount(0);

  await page.goto(chatUrl);
  await expect(async () => {
    await page.reload();
    await expect(reply(page).getByRole("group", { name: "Sources" }).getByRole("listitem").first()).toHaveText(
      `[1] ${ERASED}`,
      { timeout: 1000 },
    );
  }).toPass({ timeout: 15_000 });
});
