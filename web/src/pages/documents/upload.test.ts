import { describe, expect, it } from "vitest";
import { describeUploadFailure, formatBytes, mayRetry, uploadFailure } from "./upload";

const file = { size: 25 * 1024 * 1024 };

describe("a refused upload", () => {
  it("says what the file is and what Parley reads, in the server's words", () => {
    const failure = uploadFailure(400, {
      error: {
        code: "BAD_USER_INPUT",
        message: "the file is a PNG image; Parley reads PDF, Word (.docx), HTML, Markdown and plain text",
      },
    });
    expect(failure.code).toBe("BAD_USER_INPUT");
    expect(describeUploadFailure(failure, file)).toBe(
      "The file is a PNG image; Parley reads PDF, Word (.docx), HTML, Markdown and plain text.",
    );
    expect(mayRetry(failure)).toBe(false);
  });

  it("reads the body limit's own answer (GraphQL's shape) as too large, with the file's size", () => {
    const failure = uploadFailure(413, {
      errors: [{ message: "the request body is larger than 21037056 bytes", extensions: { code: "PAYLOAD_TOO_LARGE" } }],
    });
    expect(failure.code).toBe("PAYLOAD_TOO_LARGE");
    expect(describeUploadFailure(failure, file)).toBe(
      "The file is 25 MB, more than Parley accepts for one document. Split it into smaller documents.",
    );
    expect(mayRetry(failure)).toBe(false);
  });

  it("falls back on the status when the answer is not Parley's JSON (a proxy's page)", () => {
    expect(uploadFailure(413, null).code).toBe("PAYLOAD_TOO_LARGE");
    expect(uploadFailure(429, "<html>").code).toBe("RATE_LIMITED");
    expect(uploadFailure(502, null)).toMatchObject({ code: "INTERNAL", message: "the server answered 502" });
  });

  it("says how long to wait when rate limited, and may be sent again", () => {
    const failure = uploadFailure(429, { error: { code: "RATE_LIMITED", message: "slow down", retryAfterSeconds: 12.2 } });
    expect(describeUploadFailure(failure, file)).toBe("Too many requests: try again in 13 s.");
    expect(mayRetry(failure)).toBe(true);
  });

  it("tells a lost connection from a refusal, and lets it be sent again", () => {
    const failure = uploadFailure(0, null);
    expect(failure.code).toBe("NETWORK");
    expect(describeUploadFailure(failure, file)).toMatch(/did not reach Parley/);
    expect(mayRetry(failure)).toBe(true);
  });

  it("explains a refused collection without the server's wording", () => {
    const failure = uploadFailure(403, { error: { code: "FORBIDDEN", message: "tenant admins only" } });
    expect(describeUploadFailure(failure, file)).toBe("You may not add documents to this collection.");
  });

  it("keeps the server's sentence when it already ends like one", () => {
    const failure = uploadFailure(400, { error: { code: "BAD_USER_INPUT", message: "the file is empty." } });
    expect(describeUploadFailure(failure, file)).toBe("The file is empty.");
  });
});

it("writes sizes as people read them", () => {
  expect(formatBytes(0)).toBe("0 B");
  expect(formatBytes(1023)).toBe("1023 B");
  expect(formatBytes(1536)).toBe("1.5 KB");
  expect(formatBytes(20 * 1024 * 1024)).toBe("20 MB");
  expect(formatBytes(3.25 * 1024 * 1024)).toBe("3.3 MB");
});
