import sys

from include.bench.runner import main

sys.exit(main())
