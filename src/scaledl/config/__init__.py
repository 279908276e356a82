"""Every stage's typed config, in one layer that imports no runtime code.

One module per stage: `data`, `augment`, `models` (the recipe's model knobs), `train`,
`export`, `recipe` (the sections together), `optimize`, `serve`, `monitor`, `maintain`.
They import pydantic, the standard library, `scaledl.errors`/`validation` and the contract,
never torch, ONNX Runtime or stage code (tests/layers.py checks it), so a CLI can build its
flags from them and a tool can read or validate a config without loading a model.

Each field's default and description live once, here: the CLI derives its flags, defaults and
help from them (`scaledl.cli.options`), and `scaledl serve` also reads its settings from
`SCALEDL_`-prefixed environment variables (`scaledl.config.serve`).
"""
