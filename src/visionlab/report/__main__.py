"""`python -m visionlab.report <paths…> --out <dir>`."""

import sys

from visionlab.cli.report import main

sys.exit(main())
