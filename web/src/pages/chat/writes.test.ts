import { expect, it } from "vitest";
import { firstTokenRendered, lastFirstToken, listWrittenPosition, markSend, noteWrite, writtenPosition } from "./writes";

it("remembers the highest position written per chat and for the list", () => {
  noteWrite("c1", 10);
  noteWrite("c1", 7);
  noteWrite("c2", 12);
  expect(writtenPosition("c1")).toBe(10);
  expect(writtenPosition("c3")).toBeNull();
  expect(listWrittenPosition()).toBe(12);
});

it("measures send to first token on the first reply that was not there before", () => {
  markSend("c1", 1000, ["old"]);
  expect(firstTokenRendered("c2", ["new"], 1100)).toBeNull();
  expect(firstTokenRendered("c1", ["old"], 1200)).toBeNull();
  expect(firstTokenRendered("c1", ["old", "new"], 1250.4)).toBe(250);
  expect(lastFirstToken()).toBe(250);
  expect(firstTokenRendered("c1", ["newer"], 1300)).toBeNull();
});
