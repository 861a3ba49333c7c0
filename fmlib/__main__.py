import sys

from fmlib.cli import main

sys.exit(main())
