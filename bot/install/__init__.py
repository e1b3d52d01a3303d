"""Installs and tokens: the Slack installations store, OAuth, the signed OAuth state,
and the token lookup every request and delivery goes through."""
