import sys

from fairpp.cli import main

sys.exit(main())
