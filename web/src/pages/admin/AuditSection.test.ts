import { describe, expect, it } from "vitest";
import { parsePublicKeys } from "./AuditSection";

describe("parsePublicKeys", () => {
  it("keeps the key ids and PEMs of GET /audit/public-key", () => {
    const pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n";
    expect(parsePublicKeys({ algorithm: "Ed25519", keys: [{ key_id: "abcd", public_key_pem: pem, extra: 1 }] })).toEqual({
      algorithm: "Ed25519",
      keys: [{ key_id: "abcd", public_key_pem: pem }],
    });
  });

  it("drops entries that are not strings and refuses other shapes", () => {
    expect(parsePublicKeys({ keys: [{ key_id: 1, public_key_pem: "<b>" }, null] }).keys).toEqual([]);
    expect(() => parsePublicKeys({ error: "nope" })).toThrow();
    expect(() => parsePublicKeys(null)).toThrow();
  });
});
