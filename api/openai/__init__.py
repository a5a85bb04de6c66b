"""The OpenAI-compatible surface: `POST /v1/chat/completions` translated to and from Anthropic
Messages, so it shares the metering, quotas and ledger of `/v1/messages`."""
