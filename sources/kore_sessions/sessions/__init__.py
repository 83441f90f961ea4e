"""The `sessions` resource: its schema (stated once), records, Arrow rows, the refresh of open
sessions, and the completeness counts against the API."""
