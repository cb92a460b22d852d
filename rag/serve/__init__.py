"""Serving: the library many users share, the JSON API, the chat, and the server that runs them."""
