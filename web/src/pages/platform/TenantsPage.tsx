import { Page } from "../../components/ui";
import { useTitle } from "../../lib/router";

export function TenantsPage() {
  useTitle("Tenants");
  return <Page title="Tenants">{null}</Page>;
}
