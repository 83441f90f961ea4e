"""Names a person understands for the codes the API uses: channels and languages.

A known code reads `Readable name (code)`, so the code stays findable in the marts; a code
this table does not know is shown as it is.
"""

from __future__ import annotations

# What the rollups write when a session has no channel or no language.
UNKNOWN_CODE = "unknown"
# How that code reads.
UNKNOWN_LABEL = "Not recorded (unknown)"
# Channel codes of the Sessions History API (`channel`), as the vendor's channel list names them.
CHANNEL_NAMES = {
    "rtm": "Web/Mobile SDK",
    "korevg": "Kore Voice Gateway",
    "ivrVoice": "IVR voice",
    "ivr": "IVR",
    "audiocodes": "AudioCodes voice",
    "twiliovoice": "Twilio voice",
    "msteams": "Microsoft Teams",
    "slack": "Slack",
    "sms": "SMS",
    "email": "Email",
    "facebook": "Facebook Messenger",
    "api": "API webhook",
    "webhook": "Webhook",
    "spark": "Webex",
    "jabber": "Cisco Jabber",
    "telegram": "Telegram",
    "line": "LINE",
    "skype": "Skype",
    "twitter": "X (Twitter)",
    "whatsapp": "WhatsApp",
    "wechat": "WeChat",
    "yammer": "Yammer",
    "workplace": "Workplace from Meta",
    "ringcentral": "RingCentral",
    "hangoutchat": "Google Chat",
    "googleactions": "Google Assistant",
    "alexa": "Amazon Alexa",
    "mattermost": "Mattermost",
    "liveperson": "LivePerson",
    "unblu": "Unblu",
    "zendesk": "Zendesk",
    "kore": "Kore.ai Messenger",
}
# ISO 639-1 codes of the languages bots are commonly built in (`session_lang`).
LANGUAGE_NAMES = {
    "ar": "Arabic",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fi": "Finnish",
    "fr": "French",
    "hi": "Hindi",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ru": "Russian",
    "sv": "Swedish",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "zh": "Chinese",
    "zh_cn": "Chinese (simplified)",
    "zh_tw": "Chinese (traditional)",
}


def channel_label(code: str) -> str:
    """A channel code as a person reads it, with the code.

    Args:
        code: The `channel` of the marts (e.g. `rtm`).

    Returns:
        E.g. `Web/Mobile SDK (rtm)`; an unknown code as it is.
    """
    return _label(code, CHANNEL_NAMES.get(code))


def language_label(code: str) -> str:
    """A language code as a person reads it, with the code.

    Args:
        code: The `language` of the marts (e.g. `en`).

    Returns:
        E.g. `English (en)`; an unknown code as it is.
    """
    return _label(code, LANGUAGE_NAMES.get(code.lower()))


def _label(code: str, name: str | None) -> str:
    """`name (code)`, the unknown marker's label, or the code itself."""
    if code == UNKNOWN_CODE:
        return UNKNOWN_LABEL
    return f"{name} ({code})" if name else code
