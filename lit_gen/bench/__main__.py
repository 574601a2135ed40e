import sys

from lit_gen.bench import main

sys.exit(main())
