"""`python -m visionlab.report <paths…> --out <dir>`."""

import sys

from visionlab.report.cli import main

sys.exit(main())
