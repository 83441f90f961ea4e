"""The SQL models (`staging/`, `intermediate/`, `marts/`), shipped as package data and read
through `importlib.resources`."""
