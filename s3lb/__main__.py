"""`python -m s3lb` runs the command line."""

from s3lb.cli.main import main

raise SystemExit(main())
