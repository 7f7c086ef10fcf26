"""The `nearcart` subcommands' work, one module per command group; `edge_api.cli` only parses arguments."""
