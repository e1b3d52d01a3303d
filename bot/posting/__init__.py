"""What the bot says unasked: digests and alerts delivery, the loop that runs them when
they are due, and a sync's progress message."""
