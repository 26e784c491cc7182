import { describe, expect, it, vi } from "vitest";
import { GraphQLRequestError } from "./graphql";
import { retryIdempotent } from "./idempotent";

const noWait = { sleep: () => Promise.resolve() };
const failure = (code: string) => new GraphQLRequestError([{ message: code, extensions: { code } }]);

describe("retryIdempotent", () => {
  it("retries a network failure with the same request", async () => {
    const send = vi.fn().mockRejectedValueOnce(new TypeError("Failed to fetch")).mockResolvedValueOnce("ok");
    await expect(retryIdempotent(send, noWait)).resolves.toBe("ok");
    expect(send).toHaveBeenCalledTimes(2);
  });

  it("does not retry an answer such as BAD_USER_INPUT", async () => {
    const send = vi.fn().mockRejectedValue(failure("BAD_USER_INPUT"));
    await expect(retryIdempotent(send, noWait)).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    expect(send).toHaveBeenCalledTimes(1);
  });

  it("gives up after its attempts with the last error", async () => {
    const send = vi.fn().mockRejectedValue(failure("INTERNAL"));
    await expect(retryIdempotent(send, { ...noWait, attempts: 3 })).rejects.toMatchObject({ code: "INTERNAL" });
    expect(send).toHaveBeenCalledTimes(3);
  });

  it("waits longer before each retry", async () => {
    const waits: number[] = [];
    const send = vi.fn().mockRejectedValue(new TypeError("offline"));
    await retryIdempotent(send, { attempts: 3, sleep: async (ms) => void waits.push(ms) }).catch(() => null);
    expect(waits).toEqual([400, 800]);
  });
});
