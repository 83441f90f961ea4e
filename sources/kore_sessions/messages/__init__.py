"""The `messages` resource: the Conversation History API (getMessagesV2) beside the sessions."""
