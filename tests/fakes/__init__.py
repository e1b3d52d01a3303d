"""Local fakes of external services for the bot's tests.

`slack_api.FakeSlack` is a real HTTP server that answers like Slack's Web API, so the
bot's real clients (slack_sdk's WebClient/AsyncWebClient, Bolt's respond()) are
exercised over the wire instead of being mocked; `signing` builds the signed requests
Slack sends to the bot in HTTP mode.
"""
