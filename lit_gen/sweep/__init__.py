"""`python -m lit_gen.sweep SWEEP.yaml`: run a W&B sweep file locally, resumably.

`file` reads and validates sweep files (the W&B format, plus lit_gen's rules); `runner`
plans, launches and resumes the runs of one sweep root.
"""
