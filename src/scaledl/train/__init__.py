"""Training: `train_recipe(recipe, out)` for recipes; `Trainer` for any nn.Module."""

from scaledl.train.config import TrainConfig

__all__ = ["TrainConfig"]
