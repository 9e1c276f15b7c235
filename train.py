"""Thin entry point: `python train.py [overrides]` (see README). All logic lives in the visionlab package."""

from visionlab.cli.train import main

if __name__ == "__main__":
    main()
