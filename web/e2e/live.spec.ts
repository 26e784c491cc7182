// A dropped WebSocket: the conversation says it is reconnecting, and once the connection is back
// every message written meanwhile (here and in another browser) shows, each exactly once.
import type { Page, WebSocketRoute } from "@playwright/test";
import { expect, fx, signIn, test } from "./support";

const messages = (page: Page) => page.getByRole("log", { name: "Messages" });

async function send(page: Page, text: string): Promise<void> {
  await page.getByRole("textbox", { name: "Message" }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

/** The texts of the conversation's articles, in order ("You: …", "Assistant: …"). */
async function transcript(page: Page): Promise<string[]> {
  return messages(page)
    .getByRole("article")
    .evaluateAll((articles) =>
      articles.map((a) => {
        const who = a.getAttribute("aria-label") === "You message" ? "You" : "Assistant";
        const text = a.querySelector(".message-text, .markdown, p")?.textContent ?? a.textContent;
        return `${who}: ${(text ?? "").trim()}`;
      }),
    );
}

test("a dropped WebSocket resumes without losing or doubling a message", async ({ page, another }) => {
  // Every WebSocket of this page goes through us: we can drop it and refuse reconnects.
  let down = false;
  const open: WebSocketRoute[] = [];
  await page.routeWebSocket(/\/graphql$/, (ws) => {
    if (down) {
      void ws.close({ code: 1013, reason: "e2e: the network is down" });
      return;
    }
    ws.connectToServer();
    open.push(ws);
  });

  await signIn(page, fx.a.slug, fx.a.member);
  await send(page, "Before the drop");
  await expect(page).toHaveURL(/\/chats\/[0-9a-f-]{36}$/);
  const chatPath = new URL(page.url()).pathname;
  await expect(messages(page).getByRole("article", { name: "Assistant message" })).toContainText("Before the drop");
  await expect(messages(page).locator('[data-streaming="true"]')).toHaveCount(0);
  expect(open.length, "the page's WebSocket").toBeGreaterThan(0);

  // The connection drops, and reconnects are refused for a while.
  down = true;
  for (const ws of open.splice(0)) await ws.close({ code: 1006, reason: "e2e: dropped" });
  await expect(page.getByRole("status").filter({ hasText: "Reconnecting" })).toBeVisible();

  // Meanwhile: a message from this page (over HTTP) whose reply streams while it cannot listen...
  await send(page, "Sent while disconnected");
  await expect(messages(page).getByRole("article", { name: "You message" })).toHaveCount(2);
  // ...and one from the same user in another browser, with its reply.
  const other = await another();
  await signIn(other, fx.a.slug, fx.a.member, chatPath);
  await expect(messages(other).getByRole("article", { name: "Assistant message" })).toHaveCount(2);
  await send(other, "Sent from another browser meanwhile");
  await expect(messages(other).getByRole("article", { name: "Assistant message" })).toHaveCount(3);
  await expect(messages(other).locator('[data-streaming="true"]')).toHaveCount(0);

  // The network is back: the page resumes after what it holds.
  down = false;
  await expect(page.getByRole("status").filter({ hasText: "Reconnecting" })).toHaveCount(0, { timeout: 30_000 });
  const assistant = messages(page).getByRole("article", { name: "Assistant message" });
  await expect(assistant).toHaveCount(3, { timeout: 20_000 });
  await expect(messages(page).locator('[data-streaming="true"]')).toHaveCount(0);

  const expected = [
    "You: Before the drop",
    "Assistant: [echo model, not AI] Before the drop",
    "You: Sent while disconnected",
    "Assistant: [echo model, not AI] Sent while disconnected",
    "You: Sent from another browser meanwhile",
    "Assistant: [echo model, not AI] Sent from another browser meanwhile",
  ];
  expect(await transcript(page)).toEqual(expected);
  // Still exactly once after a while (a late duplicate delivery would show here).
  await page.waitForTimeout(1_000);
  expect(await transcript(page)).toEqual(expected);
  // And what the server stored is the same.
  expect(await transcript(other)).toEqual(expected);
  await page.reload();
  await expect(messages(page).getByRole("article")).toHaveCount(6);
  expect(await transcript(page)).toEqual(expected);
});
