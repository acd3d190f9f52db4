"""Publishers: the Mastodon.py adapter, server discovery, and the client they share."""
