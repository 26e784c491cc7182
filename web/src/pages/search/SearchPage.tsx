import { Page } from "../../components/ui";
import { useTitle } from "../../lib/router";

export function SearchPage() {
  useTitle("Search");
  return <Page title="Search">{null}</Page>;
}
