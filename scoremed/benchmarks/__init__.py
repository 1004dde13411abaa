"""Benchmarks and tuning: reconstruction quality (:mod:`.quality`), speed (:mod:`.speed`, its report
:mod:`.speed_report`), solve-setting search on validation images (:mod:`.tuning`), and the
Markdown report they write sections of (:mod:`.report`). Run through ``scoremed benchmark`` and
``scoremed tune``."""
