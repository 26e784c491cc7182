// Chatting: a reply streams in and is stored, the browser's send-to-first-token figure, stopping
// a generation, and another tenant's chat staying invisible.
import type { Page } from "@playwright/test";
import { expect, fx, percentile, screenshot, signIn, test } from "./support";

const ECHO = "[echo model, not AI]";
const CHAT_URL = /\/chats\/[0-9a-f-]{36}(\?.*)?$/;

const messages = (page: Page) => page.getByRole("log", { name: "Messages" });
const mine = (page: Page) => messages(page).getByRole("article", { name: "You message" });
const replies = (page: Page) => messages(page).getByRole("article", { name: "Assistant message" });
const streaming = (page: Page) => messages(page).locator('[data-streaming="true"]');

async function send(page: Page, text: string): Promise<void> {
  await page.getByRole("textbox", { name: "Message" }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

/** Remember whether a streaming reply was ever on the page (it may last well under a second). */
async function watchStreaming(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as Window & { sawStreaming?: boolean };
    w.sawStreaming = false;
    const look = () => {
      if (document.querySelector('[data-streaming="true"]')) w.sawStreaming = true;
    };
    new MutationObserver(look).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ["data-streaming"],
    });
  });
}

const sawStreaming = (page: Page) =>
  page.evaluate(() => (window as Window & { sawStreaming?: boolean }).sawStreaming === true);

// About 150 words with some Markdown: the echo model says it back word by word for about a
// second, long enough for the page to render it streaming, and the reply renders the Markdown.
const PLAN = [
  "Summarise our **launch plan** for the team:",
  "",
  "1. Finish the *beta* by Friday and freeze the feature list.",
  "2. Review the `pricing` page with sales and legal.",
  "3. Email the first fifty customers with a personal note.",
  "",
  "The launch needs a short checklist that everyone can follow, with an owner and a date for each " +
    "step, and a clear note on what happens when a step slips. Support should know the answers to " +
    "the ten questions customers asked most during the beta, and the status page should say which " +
    "regions are live. Marketing prepares one announcement, one blog post and one short video; the " +
    "product team writes the release notes and the migration guide for customers of the old plan. " +
    "Finance checks that invoices show the new prices from the first day. After the launch, we meet " +
    "every morning for a week to look at sign-ups, errors and support tickets, and decide together " +
    "what to fix first. That is the whole plan.",
].join("\n");

test("a reply streams in, is stored, and is there after a reload", async ({ page }) => {
  await signIn(page, fx.a.slug, fx.a.member);
  await expect(page.getByRole("heading", { name: "Start a conversation" })).toBeVisible();
  // The first message starts the chat (titled after it); the page then follows it live.
  await send(page, "Hello Parley");
  await expect(page).toHaveURL(CHAT_URL);
  const chatUrl = page.url();
  await expect(replies(page)).toContainText(`${ECHO} Hello Parley`);
  await expect(streaming(page)).toHaveCount(0);

  await watchStreaming(page);
  await send(page, PLAN);
  await expect(mine(page)).toHaveCount(2);
  await expect(replies(page)).toHaveCount(2);
  const reply = replies(page).last();
  await expect(reply).toContainText(`${ECHO} Summarise our launch plan`);
  await expect(reply).toContainText("That is the whole plan.");
  await expect(streaming(page)).toHaveCount(0);
  expect(await sawStreaming(page), "the reply was shown streaming (data-streaming)").toBe(true);
  // Rendered Markdown, not the asterisks.
  await expect(reply.locator("strong")).toHaveText("launch plan");
  await expect(reply.getByRole("listitem")).toHaveCount(3);
  await expect(page.getByRole("button", { name: "Stop generating" })).toHaveCount(0);
  await screenshot(page, "conversation");

  // Stored: a reload reads it back from the server.
  await page.reload();
  await expect(mine(page)).toHaveCount(2);
  await expect(replies(page)).toHaveCount(2);
  await expect(replies(page).last()).toContainText("That is the whole plan.");

  // And the chat list finds the conversation after a fresh load.
  await page.goto("/chats");
  const listed = page.getByRole("navigation", { name: "Chats" }).getByRole("link", { name: "Hello Parley" });
  await expect(listed).toHaveCount(1);
  await listed.click();
  await expect(page).toHaveURL(chatUrl);
  await expect(replies(page).last()).toContainText("That is the whole plan.");
});

test("send-to-first-token as the browser sees it (10 sends)", async ({ page }) => {
  await signIn(page, fx.a.slug, fx.a.member);
  await send(page, "Warm-up message");
  await expect(page).toHaveURL(CHAT_URL);
  await expect(replies(page)).toHaveCount(1);
  await expect(streaming(page)).toHaveCount(0);

  const figures: number[] = [];
  for (let i = 1; i <= 10; i++) {
    await send(page, `Timing message ${i}`);
    await expect(replies(page)).toHaveCount(i + 1);
    await expect(replies(page).last()).toContainText(`Timing message ${i}`);
    await expect(streaming(page)).toHaveCount(0);
    const ms = Number(await messages(page).getAttribute("data-first-token-ms"));
    expect(ms).toBeGreaterThan(0);
    figures.push(ms);
  }
  // tests/test_web_e2e.py echoes this line (no timing assertion: CI machines vary).
  console.log(
    `send-to-first-token in the browser (echo model, ${figures.length} sends): ` +
      `p50 ${percentile(figures, 50)} ms, p99 ${percentile(figures, 99)} ms ` +
      `(all: ${figures.join(", ")})`,
  );
});

test("stopping a generation ends the reply as cancelled, and it stays so", async ({ page }) => {
  // About 3,000 words: the echo model takes many seconds to say them all.
  const long = Array.from({ length: 3000 }, (_, i) => `w${i}`).join(" ");
  await signIn(page, fx.a.slug, fx.a.member);
  await send(page, `Long one: ${long}`);
  await expect(page).toHaveURL(CHAT_URL);
  await expect(streaming(page)).toHaveCount(1);
  await expect(streaming(page)).toContainText(ECHO);

  await page.getByRole("button", { name: "Stop generating" }).click();
  await expect(streaming(page)).toHaveCount(0);
  await expect(replies(page)).toHaveCount(1);
  await expect(replies(page)).toContainText("Finish reason: cancelled");
  await expect(replies(page)).not.toContainText("w2999");
  await expect(page.getByRole("button", { name: "Stop generating" })).toHaveCount(0);

  await page.reload();
  await expect(replies(page)).toHaveCount(1);
  await expect(replies(page)).toContainText("Finish reason: cancelled");
  await expect(replies(page)).not.toContainText("w2999");
});

test("another tenant's chat is not found, and nothing of it shows", async ({ page }) => {
  await signIn(page, fx.a.slug, fx.a.member, `/chats/${fx.b.chat.id}`);
  await expect(page.getByRole("heading", { name: "Chat not found" })).toBeVisible();
  await expect(page.locator("body")).not.toContainText(fx.b.chat.title);
  await expect(page.locator("body")).not.toContainText(fx.b.chat.secret);
  await expect(page.getByRole("log", { name: "Messages" })).toHaveCount(0);
  await expect(page.getByRole("textbox", { name: "Message" })).toHaveCount(0);
});
