"""One loader per feed kind, each with the SQL that upserts its rows (see `base.Loader`)."""
