import sys

from lakecore.cli import main

sys.exit(main())
