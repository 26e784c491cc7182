import { Page } from "../../components/ui";
import { useTitle } from "../../lib/router";

export function AdminPage() {
  useTitle("Admin");
  return <Page title="Admin">{null}</Page>;
}
