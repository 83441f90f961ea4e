"""The words of the sandbox's conversations: fixed pools the generator draws from.

Some user texts carry personal-looking data (a phone number, an e-mail address) and every
drop-off prompt carries digits, an e-mail address or an id, so a privacy test or a masking
mart has something to find. Every address is at ``example.com``/``example.org`` and every
phone number is a 555 number: nothing belongs to anyone.
"""

from __future__ import annotations

# What a user opens a conversation with.
OPENING_TEXTS = (
    "Hi, I want to check my balance",
    "I need to book a flight to Denver",
    "I forgot my password",
    "Where is my order?",
    "I'd like to pay my bill",
    "hello",
)
# What a user says later in a conversation.
USER_TEXTS = (
    "yes",
    "no, that's not it",
    "The one from last Tuesday",
    "Can you repeat that?",
    "ok thanks",
    "What are my options?",
    "I already tried that",
)
# User texts with personal-looking data; {phone} and {email} are filled in per user.
PERSONAL_TEXTS = (
    "You can call me on {phone}",
    "My e-mail is {email}",
    "Send the receipt to {email} please",
    "My number is {phone}, call me back",
)
# Bot replies in the middle of a conversation.
BOT_REPLIES = (
    "Sure, I can help with that.",
    "Could you tell me a bit more?",
    "Here is what I found for you.",
    "Your request has been updated.",
    "Is there anything else I can do for you?",
    "Let me check that for you.",
)
# The bot's last words when a user drops off: digits, e-mail addresses and ids to mask.
DROP_OFF_PROMPTS = (
    "Please enter the 16-digit number on your card",
    "We sent a code to jane.doe@example.com",
    "Your ticket TK-48213 is open",
    "Please type the 6-digit code we sent to +1 415 555 0199",
    "Please confirm your account number ending in 4821",
)
# The bot's last words when it hands the conversation over to a human agent.
AGENT_HANDOFF_TEXTS = (
    "Let me connect you to an agent.",
    "I am transferring you to a live agent now, please hold.",
    "An agent will take over this conversation shortly.",
)
# What an Alert task pushes (ms 0, served by v1 only).
ALERT_TEXTS = (
    "Reminder: your payment of $120.00 is due on Friday",
    "Your order has shipped",
    "Your flight is on time and boards at gate B12",
)
# What an Action task reports (ms 2, served by v1 only).
ACTION_TEXTS = (
    "Updated your contact preferences",
    "Created a support case for you",
)
# Words of a control message (type ctrlmsg).
CONTROL_TEXT = "context updated"
# Non-text components: (cT, text) of a user's and of a bot's message.
USER_MEDIA = (("attachment", "statement.pdf"), ("image", "photo.jpg"), ("location", "current location"))
BOT_MEDIA = (("image", "chart.png"), ("filelink", "terms.pdf"))
# Names the personal-looking e-mail addresses are made of.
FIRST_NAMES = ("maria", "john", "aiko", "li", "omar", "sofia")
LAST_NAMES = ("lopez", "smith", "tanaka", "wang", "haddad", "rossi")
