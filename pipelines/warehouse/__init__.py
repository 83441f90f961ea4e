"""What the warehouse holds and is asked: the SQL models and their settings, erasures, exports,
the audit, and the personal-data rule the models and the report share."""
