// The browser's sign-in. The refresh token lives in an HttpOnly cookie that only
// /auth/session/* receives (no script can read it); the access token lives in this module's
// memory only. Every call that changes the cookies is serialised across tabs (Web Locks), because a
// refresh token works once and presenting a used one signs the whole sign-in out (docs/auth.md);
// tabs tell each other about sign-ins and sign-outs (BroadcastChannel).

export type Role = "PLATFORM_ADMIN" | "TENANT_ADMIN" | "MEMBER" | "AUDITOR";

export interface SessionUser {
  id: string;
  tenantId: string;
  email: string;
  displayName: string;
  role: Role;
}

interface SessionBody {
  accessToken: string;
  expiresIn: number;
  user: SessionUser;
}

export class AuthError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

type Listener = (user: SessionUser | null) => void;

const CSRF_COOKIE = "parley_csrf";
/** Refresh this long before the access token expires. */
const EARLY_SECONDS = 60;

function csrfToken(): string {
  const pair = document.cookie.split("; ").find((c) => c.startsWith(`${CSRF_COOKIE}=`));
  return pair ? decodeURIComponent(pair.slice(CSRF_COOKIE.length + 1)) : "";
}

async function post(path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      "X-CSRF-Token": csrfToken(),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = json?.error ?? {};
    throw new AuthError(
      error.code ?? "INTERNAL",
      error.message ?? `the server answered ${response.status}`,
      error.retryAfterSeconds,
    );
  }
  return json;
}

async function serialised<T>(work: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  return locks ? locks.request("parley-session-cookies", work) : work();
}

type TabMessage = { kind: "signed-out" } | { kind: "signed-in"; userId: string };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Session {
  private accessToken: string | null = null;
  private expiresAt = 0;
  private current: SessionUser | null = null;
  private refreshing: Promise<string | null> | null = null;
  private listeners = new Set<Listener>();
  private tabs: BroadcastChannel | null =
    typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("parley-session");

  constructor() {
    if (this.tabs) this.tabs.onmessage = (event: MessageEvent<TabMessage>) => this.heard(event.data);
  }

  /** Another tab signed out, or in as someone: this tab follows instead of showing stale data. */
  private heard(message: TabMessage): void {
    if (message.kind === "signed-out") this.forget();
    else if (this.current && this.current.id !== message.userId) location.reload();
  }

  private tell(message: TabMessage): void {
    this.tabs?.postMessage(message);
  }

  get user(): SessionUser | null {
    return this.current;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private adopt(body: SessionBody): SessionUser {
    this.accessToken = body.accessToken;
    this.expiresAt = Date.now() + body.expiresIn * 1000;
    this.current = body.user;
    this.emit();
    return body.user;
  }

  private forget(): void {
    this.accessToken = null;
    this.expiresAt = 0;
    if (this.current !== null) {
      this.current = null;
      this.emit();
    }
  }

  private emit(): void {
    for (const listener of this.listeners) listener(this.current);
  }

  /** Update the signed-in user's details (e.g. a role change seen through `me`). */
  update(user: Partial<SessionUser>): void {
    if (!this.current) return;
    const next = { ...this.current, ...user };
    if (JSON.stringify(next) !== JSON.stringify(this.current)) {
      this.current = next;
      this.emit();
    }
  }

  private async signedIn(path: string, body: unknown): Promise<SessionUser> {
    const user = this.adopt(await serialised(() => post(path, body)));
    this.tell({ kind: "signed-in", userId: user.id });
    return user;
  }

  signIn(tenant: string, email: string, password: string): Promise<SessionUser> {
    return this.signedIn("/auth/session", { tenant, email, password });
  }

  finishOidc(tenant: string, code: string, codeVerifier: string): Promise<SessionUser> {
    return this.signedIn("/auth/session/oidc", { tenant, code, codeVerifier });
  }

  async changePassword(currentPassword: string, newPassword: string): Promise<SessionUser> {
    const token = await this.token();
    return this.adopt(
      await serialised(() =>
        post(
          "/auth/session/password",
          { currentPassword, newPassword },
          { Authorization: `Bearer ${token}` },
        ),
      ),
    );
  }

  /** Resume the sign-in the cookie holds, e.g. after a reload. Null when there is none. */
  async resume(): Promise<SessionUser | null> {
    return (await this.refresh()) ? this.current : null;
  }

  /** A new access token from the refresh cookie, once at a time in this tab and across tabs.
   * Null only when the sign-in has ended (UNAUTHENTICATED); anything else throws and keeps it. */
  refresh(): Promise<string | null> {
    this.refreshing ??= serialised(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return this.adopt(await post("/auth/session/refresh")) && this.accessToken;
        } catch (error) {
          if (error instanceof AuthError && error.code === "UNAUTHENTICATED") {
            this.forget();
            return null;
          }
          if (error instanceof AuthError && error.code === "RATE_LIMITED" && attempt < 2) {
            await sleep(Math.min((error.retryAfterSeconds ?? 1) * 1000, 30_000));
            continue;
          }
          throw error;
        }
      }
    }).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** A valid access token, refreshed first when it is about to expire; null when signed out. */
  async token(): Promise<string | null> {
    if (this.accessToken && Date.now() < this.expiresAt - EARLY_SECONDS * 1000) {
      return this.accessToken;
    }
    return this.refresh();
  }

  async signOut(): Promise<void> {
    try {
      await serialised(() => post("/auth/session/logout"));
    } finally {
      this.forget();
      this.tell({ kind: "signed-out" });
    }
  }

  /** After `logoutEverywhere` or when the server says the sign-in has ended. */
  ended(): void {
    this.forget();
  }
}

export const session = new Session();
