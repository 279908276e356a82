"""Training: `train_recipe(recipe, out)` for recipes; `Trainer` for any nn.Module."""

from scaledl.config.train import TrainConfig

__all__ = ["TrainConfig"]
