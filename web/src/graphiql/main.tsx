// GraphiQL from Parley's own assets (no CDN): works on air-gapped and on-premises machines.
import "graphiql/style.css";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import { createRoot } from "react-dom/client";

const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
const fetcher = createGraphiQLFetcher({ url: "/graphql", subscriptionUrl: wsUrl });

const DEFAULT_QUERY = `# Parley's GraphQL API. Sign in first:
#
# mutation { login(input: {tenant: "demo", email: "demo@parley.example", password: "…"}) {
#   accessToken } }
#
# then add the header {"Authorization": "Bearer <accessToken>"} below, and try:
query { me { email role } chats(first: 10) { edges { node { id title } } } }
`;

const root = document.getElementById("graphiql");
if (root) {
  root.textContent = "";
  createRoot(root).render(<GraphiQL fetcher={fetcher} defaultQuery={DEFAULT_QUERY} />);
}
