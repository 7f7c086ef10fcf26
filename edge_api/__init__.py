"""nearcart edge API: the Starlette app and the `nearcart` command."""
