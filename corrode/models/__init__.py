"""Networks only: `nn.Module`s and the config dataclasses that build them (no loops, no file I/O)."""
