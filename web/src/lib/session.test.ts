import { afterEach, expect, it, vi } from "vitest";
import { AuthError, Session } from "./session";

const user = { id: "u1", tenantId: "t1", email: "a@b.example", displayName: "A", role: "MEMBER" };

function answer(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function serverAnswers(...answers: Response[]) {
  const fetchMock = vi.fn(async () => answers.shift() ?? answer(500, {}));
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

async function signedIn(): Promise<Session> {
  const session = new Session();
  serverAnswers(answer(200, { accessToken: "a1", expiresIn: 900, user }));
  await session.signIn("t", "a@b.example", "pw");
  return session;
}

it("keeps the access token in memory and sends the CSRF cookie's value", async () => {
  document.cookie = "parley_csrf=token-123";
  const session = await signedIn();
  const fetchMock = serverAnswers(answer(200, { accessToken: "a2", expiresIn: 900, user }));
  expect(await session.refresh()).toBe("a2");
  const [path, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
  expect(path).toBe("/auth/session/refresh");
  expect((init.headers as Record<string, string>)["X-CSRF-Token"]).toBe("token-123");
});

it("signs out only when the server says the sign-in has ended", async () => {
  const session = await signedIn();
  serverAnswers(answer(403, { error: { code: "FORBIDDEN", message: "csrf" } }));
  await expect(session.refresh()).rejects.toBeInstanceOf(AuthError);
  expect(session.user?.id).toBe("u1");
  serverAnswers(answer(401, { error: { code: "UNAUTHENTICATED", message: "ended" } }));
  expect(await session.refresh()).toBeNull();
  expect(session.user).toBeNull();
});

it("waits out a rate limit and tries again instead of signing out", async () => {
  vi.useFakeTimers();
  const session = await signedIn();
  serverAnswers(
    answer(429, { error: { code: "RATE_LIMITED", message: "slow down", retryAfterSeconds: 2 } }),
    answer(200, { accessToken: "a3", expiresIn: 900, user }),
  );
  const refreshed = session.refresh();
  await vi.advanceTimersByTimeAsync(2000);
  expect(await refreshed).toBe("a3");
  expect(session.user?.id).toBe("u1");
});

it("one refresh at a time: concurrent callers share it", async () => {
  const session = await signedIn();
  const fetchMock = serverAnswers(answer(200, { accessToken: "a4", expiresIn: 900, user }));
  const [a, b] = await Promise.all([session.refresh(), session.refresh()]);
  expect([a, b]).toEqual(["a4", "a4"]);
  expect(fetchMock).toHaveBeenCalledTimes(1);
});
