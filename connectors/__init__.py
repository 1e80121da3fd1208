"""Platform connectors: one package per platform, plus the contract in ``base``."""
