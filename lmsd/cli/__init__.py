"""The `lmsd` command line: one module per command group, thin functions over lmsd.ops."""
