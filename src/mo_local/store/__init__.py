"""The local SQLite event log: schema, migrations, single-writer lock."""
