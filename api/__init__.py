"""Entry points: the FastAPI app, the GraphQL schema assembly, the `parley` CLI."""
