// The chat screens' GraphQL operations (queries/schema.graphql).
import { graphql } from "../../gql";

export const TenantModels = graphql(`
  query TenantModels {
    tenant {
      id
      defaultModel
      allowedModels
    }
  }
`);

export const ChatList = graphql(`
  query ChatList($first: Int!, $after: String, $afterPosition: Int) {
    chats(first: $first, after: $after, afterPosition: $afterPosition) {
      nodes {
        id
        title
        status
        model
        createdAt
        lastMessageAt
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

/** What the conversation shows of a message, wherever it comes from (history, live, a send). */
export const MessageFields = graphql(`
  fragment MessageFields on Message {
    id
    role
    content
    model
    createdAt
    position
    replyTo
    finishReason
    citations {
      rank
      cited
      erased
      documentId
      chunkId
      title
      location
      text
    }
  }
`);

export const ChatView = graphql(`
  query ChatView($id: ID!, $afterPosition: Int, $first: Int!, $after: String) {
    chat(id: $id, afterPosition: $afterPosition) {
      id
      title
      model
      status
      ownerId
      position
      messages(first: $first, after: $after) {
        nodes {
          ...MessageFields
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`);

export const ChatEvents = graphql(`
  subscription ChatEvents($chatId: ID!, $afterPosition: Int) {
    chatEvents(chatId: $chatId, afterPosition: $afterPosition) {
      __typename
      ... on MessageAdded {
        message {
          ...MessageFields
        }
      }
      ... on ReplyDelta {
        messageId
        delta
        offset
      }
      ... on ChatDeleted {
        chatId
      }
    }
  }
`);

export const StartChat = graphql(`
  mutation StartChat($input: StartChatInput!) {
    startChat(input: $input) {
      chatId
      position
    }
  }
`);

export const SendMessage = graphql(`
  mutation SendMessage($input: SendMessageInput!) {
    sendMessage(input: $input) {
      messageId
      position
      duplicate
      message {
        ...MessageFields
      }
    }
  }
`);

export const RenameChat = graphql(`
  mutation RenameChat($input: RenameChatInput!) {
    renameChat(input: $input) {
      chatId
      position
    }
  }
`);

export const ArchiveChat = graphql(`
  mutation ArchiveChat($input: ChatIdInput!) {
    archiveChat(input: $input) {
      chatId
      position
    }
  }
`);

export const DeleteChat = graphql(`
  mutation DeleteChat($input: ChatIdInput!) {
    deleteChat(input: $input) {
      chatId
      position
    }
  }
`);

export const StopGeneration = graphql(`
  mutation StopGeneration($input: ChatIdInput!) {
    stopGeneration(input: $input) {
      requested
    }
  }
`);

/** What the chat's replies are grounded in (the documents picker is KnowledgePicker). */
export const ChatKnowledge = graphql(`
  query ChatKnowledge($chatId: ID!, $afterPosition: Int) {
    chatKnowledge(chatId: $chatId, afterPosition: $afterPosition) {
      tenantCollection
      documents {
        id
        title
        collection
        status
      }
    }
  }
`);

export const AttachKnowledge = graphql(`
  mutation AttachKnowledge($input: AttachKnowledgeInput!) {
    attachKnowledge(input: $input) {
      chatId
      position
    }
  }
`);
