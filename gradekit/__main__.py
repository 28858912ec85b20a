"""``python -m gradekit NOTEBOOK [--part NAME]``: the public checks of a notebook, from a terminal in its folder."""

import sys

from gradekit.public import main

sys.exit(main())
