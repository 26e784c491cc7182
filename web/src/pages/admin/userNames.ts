// User ids as people read them (e-mail addresses), for usage and the audit log. Reads the first
// page of users (the API's maximum, 100); ids beyond it show shortened.
import { useCallback, useMemo } from "react";
import { graphql } from "../../gql";
import { useQuery, useSessionUser } from "../../lib/hooks";

const UserNames = graphql(`
  query UserNames {
    users(first: 100) {
      nodes {
        id
        email
      }
    }
  }
`);

export function shortId(id: string): string {
  return id.length > 13 ? `${id.slice(0, 8)}…` : id;
}

/** A function from a user id to its e-mail (or a short id while unknown). */
export function useUserNames(): (id: string) => string {
  const user = useSessionUser();
  // Members may not list users; they never come here, but the hook must not ask for them.
  const { data } = useQuery(UserNames, {}, { skip: !user || user.role === "MEMBER" });
  const byId = useMemo(() => new Map((data?.users.nodes ?? []).map((u) => [u.id, u.email])), [data]);
  return useCallback((id: string) => byId.get(id) ?? shortId(id), [byId]);
}
