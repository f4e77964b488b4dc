import sys

from monosemantic.cli import main

sys.exit(main())
