"""The bot's own words. Short, friendly, and never repeating private details in public."""

from __future__ import annotations

ACK_HELPERS = "Thanks for asking! I've asked community helpers who know this: they'll reply here."
ACK_HELPERS_WITH_MATCH = (
    "Thanks for asking! I've asked community helpers who know this. "
    "Helpers: a past answer that may fit is kb#{entry} ({confidence:.0%} match)."
)
ACK_NO_HELPERS = "Thanks for asking! I've passed this to our support team; someone will reply here."
AUTO_ANSWER = "{answer}\n\n— answered before by {credit}{link}\nDid this solve it?"
PRIVATE_PUBLIC = (
    "Thanks, this needs our support team and may involve private details, so we'll continue privately. "
    "Please don't post card numbers, passwords or personal data here."
)
PRIVATE_STAFF = (
    "Private support request ({category}) from {asker} on {platform}, thread #{thread}:\n{text}\n{link}"
)
NEEDS_HUMAN_STAFF = "Needs a human ({reason}) — thread #{thread} on {platform} from {asker}:\n{text}\n{link}"
SOLVED_THANKS = "Great, marked as solved. Thanks for confirming!"
NOT_YET = "Sorry that didn't solve it. I've asked community helpers to take a look."

BUTTON_SOLVED = "Solved ✅"
BUTTON_NOT_YET = "Not yet"
BUTTON_CLAIM = "I'll take it"
BUTTON_DECLINE = "Pass"

TAG_LINE = "• {who}: {why}"
REJECTED_MATCH = 'Helpers: the suggested answer kb#{entry} did not solve it: "{answer}"'
