"""The catalog in PostgreSQL, feed ingestion and the Redis geo index."""
