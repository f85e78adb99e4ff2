"""Data quality of the published enterpriseLang notes: recompute each note's arithmetic.

* :mod:`~attackprev.evidence.audit.numbers`: numbers as the notes write them (:class:`Written`,
  :func:`agrees`, formatting), cleaning the ``published_arithmetic`` text and evaluating its parts;
* :mod:`~attackprev.evidence.audit.arithmetic`: a note's arithmetic recomputed step by step
  (:func:`recompute`), its published result, quoted k/n and chart readings;
* :mod:`~attackprev.evidence.audit.checks`: the findings (:class:`Finding`, :class:`QualityStats`),
  the data tables they are read from, and the checks (:func:`check_notes`, :func:`note_findings`).

The report section is :func:`attackprev.reporting.quality.render_quality_markdown`. Nothing is
re-exported here: import from the module that holds a name.
"""
