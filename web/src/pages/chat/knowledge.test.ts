// @vitest-environment node
import { expect, it } from "vitest";
import { isGrounded, knowledgeSummary, NOT_GROUNDED, pickable } from "./knowledge";

const doc = (id: string, status = "READY") => ({ id, title: `${id}.md`, status });

it("says when a chat is grounded in nothing", () => {
  const none = { tenantCollection: false, documents: [] };
  expect(knowledgeSummary(none)).toBe(NOT_GROUNDED);
  expect(isGrounded(none)).toBe(false);
});

it("names the attached documents, briefly when there are many", () => {
  const summary = (n: number) =>
    knowledgeSummary({ tenantCollection: false, documents: ["a", "b", "c", "d"].slice(0, n).map((id) => doc(id)) });
  expect(summary(1)).toBe("a.md");
  expect(summary(2)).toBe("a.md and b.md");
  expect(summary(4)).toBe("a.md, b.md and 2 more");
});

it("says the tenant's collection when it grounds the chat (documents then add nothing)", () => {
  const knowledge = { tenantCollection: true, documents: [doc("a")] };
  expect(knowledgeSummary(knowledge)).toBe("the tenant's collection and your own documents");
  expect(isGrounded({ tenantCollection: true, documents: [] })).toBe(true);
});

it("offers ready documents, and the attached ones whatever their state, attached first", () => {
  const listed = [doc("new", "PROCESSING"), doc("ready"), doc("failed", "FAILED"), doc("kept", "PROCESSING")];
  const attached = [doc("kept", "PROCESSING")];
  expect(pickable(listed, attached).map((d) => d.id)).toEqual(["kept", "ready"]);
});
