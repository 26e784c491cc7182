import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const calls: { query: string; variables: unknown }[] = [];

vi.mock("../../lib/graphql", async (original) => ({
  ...(await original<typeof import("../../lib/graphql")>()),
  request: vi.fn(async (document: { toString(): string }, variables: unknown) => {
    const query = document.toString();
    calls.push({ query, variables });
    if (query.includes("query Users")) {
      return {
        users: {
          nodes: [
            { id: "me", email: "admin@acme.example", displayName: "Admin", role: "TENANT_ADMIN", active: true },
            { id: "u2", email: "bob@acme.example", displayName: "Bob", role: "MEMBER", active: true },
          ],
          pageInfo: { hasNextPage: false, endCursor: null },
        },
      };
    }
    if (query.includes("mutation EraseUser")) return { eraseUser: { userId: "u2", position: 42 } };
    if (query.includes("mutation ChangeUserRole")) return { changeUserRole: { userId: "u2", position: 41 } };
    throw new Error(`unexpected ${query}`);
  }),
}));

vi.mock("../../lib/hooks", async (original) => ({
  ...(await original<typeof import("../../lib/hooks")>()),
  useSessionUser: () => ({ id: "me", tenantId: "t", email: "admin@acme.example", displayName: "Admin", role: "TENANT_ADMIN" }),
}));

const { UsersSection, grantableRoles, isErased } = await import("./UsersSection");

beforeEach(() => {
  calls.length = 0;
  // jsdom has no modal dialogs: opening one sets `open`, as a browser does.
  HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) {
    this.open = true;
  };
  HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) {
    this.open = false;
  };
});
afterEach(cleanup);

describe("UsersSection", () => {
  it("lists users with a role control and actions for others, none for oneself", async () => {
    render(<UsersSection />);
    const bob = await screen.findByRole("row", { name: /bob@acme\.example/ });
    expect(within(bob).getByRole("combobox", { name: "Role for bob@acme.example" })).toHaveValue("MEMBER");
    expect(within(bob).getByRole("button", { name: "Deactivate bob@acme.example" })).toBeInTheDocument();
    expect(screen.queryByRole("combobox", { name: "Role for admin@acme.example" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Erase admin@acme.example" })).toBeNull();
  });

  it("saves a changed role and reads the list again after the write", async () => {
    const user = userEvent.setup();
    render(<UsersSection />);
    const select = await screen.findByRole("combobox", { name: "Role for bob@acme.example" });
    await user.selectOptions(select, "AUDITOR");
    await user.click(screen.getByRole("button", { name: "Save role for bob@acme.example" }));
    await waitFor(() => expect(calls.some((c) => c.query.includes("mutation ChangeUserRole"))).toBe(true));
    expect(calls.find((c) => c.query.includes("mutation ChangeUserRole"))?.variables).toEqual({
      input: { userId: "u2", role: "AUDITOR" },
    });
    await waitFor(() =>
      expect(calls.some((c) => c.query.includes("query Users") && (c.variables as { afterPosition: number }).afterPosition === 41)).toBe(true),
    );
  });

  it("erases only once the e-mail is typed, after saying what erasure destroys", async () => {
    const user = userEvent.setup();
    render(<UsersSection />);
    await user.click(await screen.findByRole("button", { name: "Erase bob@acme.example" }));
    expect(screen.getByText(/cannot be undone/i)).toBeInTheDocument();
    expect(screen.getByText(/audit chain stays valid/i)).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Erase user for good" }));
    expect(screen.getByRole("alert")).toHaveTextContent(/nothing was erased/);
    expect(calls.some((c) => c.query.includes("mutation EraseUser"))).toBe(false);
    await user.type(screen.getByLabelText("Type bob@acme.example to confirm"), "bob@acme.example");
    await user.click(screen.getByRole("button", { name: "Erase user for good" }));
    await waitFor(() => expect(calls.some((c) => c.query.includes("mutation EraseUser"))).toBe(true));
  });
});

describe("roles", () => {
  it("only platform admins grant platform admin", () => {
    expect(grantableRoles("TENANT_ADMIN")).not.toContain("PLATFORM_ADMIN");
    expect(grantableRoles("PLATFORM_ADMIN")).toContain("PLATFORM_ADMIN");
  });

  it("knows an erased user by the read side's placeholder", () => {
    expect(isErased({ email: "(erased)", active: false })).toBe(true);
    expect(isErased({ email: "(erased)", active: true })).toBe(false);
  });
});
