"""The read side of the GraphQL API: types, query and subscription resolvers. Never writes."""
