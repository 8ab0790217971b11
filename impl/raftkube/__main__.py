import sys

from raftkube.cli import main

sys.exit(main())
