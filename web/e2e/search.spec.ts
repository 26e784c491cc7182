// Search: a hit opens its conversation at the message, scrolled into view and focused.
import { expect, fx, screenshot, signIn, test } from "./support";

test("a search hit opens the conversation at the message", async ({ page }) => {
  const { searched } = fx.a;
  await signIn(page, fx.a.slug, fx.a.member);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Search" }).click();
  const box = page.getByRole("textbox", { name: "Search messages" });
  await box.fill(searched.needle);
  await box.press("Enter");
  await expect(page).toHaveURL(new RegExp(`/search\\?q=${searched.needle}$`));

  const hit = page.locator(`a[href="/chats/${searched.id}?message=${searched.messageId}"]`);
  await expect(hit).toBeVisible();
  await expect(hit).toContainText("Travel notes");
  await expect(hit.locator("em").filter({ hasText: searched.needle })).toBeVisible();
  await screenshot(page, "search");

  await hit.click();
  await expect(page).toHaveURL(`/chats/${searched.id}?message=${searched.messageId}`);
  // The conversation is long (its first message is far above its end): the hit's message is
  // brought into view and focused, not the end of the conversation.
  const message = page.locator(`#message-${searched.messageId}`);
  await expect(message).toContainText(searched.needle);
  await expect(message).toBeInViewport();
  await expect(message).toBeFocused();
  await expect(page.getByRole("log", { name: "Messages" }).getByRole("article")).toHaveCount(32);
});
