"""Report objects -> Block Kit, built with slack_sdk's models so their validators run."""
