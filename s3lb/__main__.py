"""`python -m s3lb` runs the command line."""

from s3lb.cli import main

raise SystemExit(main())
