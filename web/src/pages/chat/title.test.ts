import { expect, it } from "vitest";
import { hitHref } from "../search/SearchPage";
import { DEFAULT_TITLE, titleFrom } from "./Conversation";

it("a chat's title is its first message's first line, shortened", () => {
  expect(titleFrom("  Plan the   trip\nwith details")).toBe("Plan the trip");
  expect(titleFrom("x".repeat(100))).toBe(`${"x".repeat(59)}…`);
  expect(titleFrom("   ")).toBe(DEFAULT_TITLE);
});

it("a search hit opens its chat at its message", () => {
  expect(hitHref({ chatId: "c 1", messageId: "m1" })).toBe("/chats/c%201?message=m1");
  expect(hitHref({ chatId: "c1", messageId: null })).toBe("/chats/c1");
});
