"""The grading engine: runs only in the grader's process (see README, "How the files fit together")."""

import sys

# jsonschema (nbformat's validator) imports the optional rfc3987-syntax when installed, which builds a parser at import:
# 0.9 s of every grading process. Notebook schemas use no IRI format, so the grader goes without it.
sys.modules.setdefault("rfc3987_syntax", None)
