import sys

from lit_gen.sweep.runner import main

sys.exit(main())
