"""Knowledge: documents turned into text, passages and embeddings for retrieval (issue 18)."""
