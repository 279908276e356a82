"""The built-in compression methods; importing a module registers its methods."""
