"""What a person reads: failures as one line, redaction of secrets and personal data, and the
containment lines the commands print."""
