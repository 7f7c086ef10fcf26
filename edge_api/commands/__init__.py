"""The `nearcart` sub-commands: settings in, plain parameters to cache/ and geo/, reports printed."""
