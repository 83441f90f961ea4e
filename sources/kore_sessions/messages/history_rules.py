"""The Conversation History API's own rules (routes, scope, pages) and the `messages` tables'
names, each stated once (`shared/spec/messages-api.md`)."""

# Route of a bot-builder app: v2, the messages of one bot, up to 10,000 a page, without the
# Alert- and Action-task messages (v2 leaves them out).
BOT_MESSAGES_PATH = "/api/public/bot/{bot_id}/getMessagesV2"

# Route of a Bot Admin Console app: every bot of the account. Only v1 is documented there
# (100 messages a page, every task's messages).
ADMIN_MESSAGES_PATH = "/api/public/getMessages"

# Most messages a page of the admin route's v1 holds (documented): asked for no more, in case a
# server refuses a larger `limit` rather than clamping it.
MAX_ADMIN_MESSAGES_PAGE_SIZE = 100

# The app scope both routes need, as the vendor names it: not the sessions' `Bot Sessions`.
MESSAGES_SCOPE = "Chat History"

# Most messages a v2 page holds (documented); a server that cuts pages shorter is learned.
MAX_MESSAGES_PAGE_SIZE = 10_000

# `type` of a user's message; anything else (`outgoing`, `ctrlmsg`) is not what a user typed.
INCOMING = "incoming"
# `type` of the bot's own message.
OUTGOING = "outgoing"

# The channel a request without `channelType` reads (documented for GET; the strictest reading
# for POST): every other channel needs its own request.
DEFAULT_CHANNEL = "rtm"

# dlt names: the messages table and its primary key (the API's `_id`).
MESSAGES_TABLE = "messages"
MESSAGE_KEY = "message_id"
