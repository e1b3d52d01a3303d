"""Files people send the bot in Slack: looked up, downloaded and kept until imported."""
