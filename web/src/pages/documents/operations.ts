// The documents' GraphQL operations (queries/schema.graphql): the documents page and the chat's
// knowledge picker. Uploads go to POST /documents (upload.ts), not through GraphQL.
import { graphql } from "../../gql";

export const DocumentFields = graphql(`
  fragment DocumentFields on Document {
    id
    title
    collection
    ownerId
    mediaType
    sizeBytes
    status
    revision
    chunks
    pages
    characters
    embeddingModel
    failureCode
    failureReason
    createdAt
    updatedAt
    position
  }
`);

export const Documents = graphql(`
  query Documents($collection: DocumentCollection, $first: Int!, $after: String, $afterPosition: Int) {
    documents(collection: $collection, first: $first, after: $after, afterPosition: $afterPosition) {
      nodes {
        ...DocumentFields
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const DocumentById = graphql(`
  query DocumentById($id: ID!, $afterPosition: Int) {
    document(id: $id, afterPosition: $afterPosition) {
      ...DocumentFields
    }
  }
`);

export const ReprocessDocument = graphql(`
  mutation ReprocessDocument($input: DocumentIdInput!) {
    reprocessDocument(input: $input) {
      documentId
      position
    }
  }
`);

export const DeleteDocument = graphql(`
  mutation DeleteDocument($input: DocumentIdInput!) {
    deleteDocument(input: $input) {
      documentId
      position
    }
  }
`);
