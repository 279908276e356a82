"""`python -m scaledl` (also what `torchrun -m scaledl train ...` starts)."""

from scaledl.cli import main

if __name__ == "__main__":
    main()
