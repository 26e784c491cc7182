import { Page } from "../../components/ui";
import { useTitle } from "../../lib/router";

export function ChatPage() {
  useTitle("Chats");
  return <Page title="Chats">{null}</Page>;
}
