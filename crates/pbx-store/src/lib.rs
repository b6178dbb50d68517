//! Storage: sqlx repositories on SQLite (default) and PostgreSQL, with migrations.
