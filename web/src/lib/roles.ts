// What each role may see in the client. The server decides (domain/policy.py); this only
// hides what would be refused anyway.
import { useEffect } from "react";
import { graphql } from "../gql";
import { request } from "./graphql";
import { type SessionUser, session } from "./session";

export const canAdminister = (u: SessionUser) => u.role === "TENANT_ADMIN" || u.role === "PLATFORM_ADMIN";
export const canAudit = (u: SessionUser) => u.role === "AUDITOR" || u.role === "TENANT_ADMIN" || u.role === "PLATFORM_ADMIN";
export const isPlatformAdmin = (u: SessionUser) => u.role === "PLATFORM_ADMIN";

const Me = graphql(`
  query Me {
    me {
      id
      tenantId
      email
      displayName
      role
      active
    }
  }
`);

/** How often the client re-reads who the user is, so a role change shows without a reload. */
export const ROLE_CHECK_MS = 10_000;

/** Follow the signed-in user's role and details: on focus, and every ROLE_CHECK_MS. */
export function useRoleFollower(user: SessionUser | null): void {
  const signedIn = user !== null;
  useEffect(() => {
    if (!signedIn) return;
    const check = async () => {
      try {
        const { me } = await request(Me);
        session.update({ role: me.role, displayName: me.displayName, email: me.email });
      } catch {
        // A failed check changes nothing; the next request shows the error.
      }
    };
    const timer = setInterval(check, ROLE_CHECK_MS);
    window.addEventListener("focus", check);
    return () => {
      clearInterval(timer);
      window.removeEventListener("focus", check);
    };
  }, [signedIn]);
}
