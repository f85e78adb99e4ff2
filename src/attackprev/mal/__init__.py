"""MAL output: attack-step TTC expressions that the real MAL tools accept.

Five modules, each importing only the ones listed before it:

* :mod:`attackprev.mal.expressions` parses and checks TTC expressions
  (:func:`~attackprev.mal.expressions.parse_ttc`), writes new ones
  (:func:`~attackprev.mal.expressions.ttc_expression`), replacing only the Bernoulli factor
  and writing the time factor first, and lists what mal-simulator would refuse or misread
  (:func:`~attackprev.mal.expressions.malsim_problems`);
* :mod:`attackprev.mal.dictionary` gives the dictionary form mal-toolbox compiles them to
  (:func:`~attackprev.mal.dictionary.ttc_dict`);
* :mod:`attackprev.mal.malfile` finds attack steps in a ``.mal`` file (and TTCs commented
  out after them) and rewrites their TTCs, byte for byte elsewhere, listing the steps it
  cannot find (:func:`~attackprev.mal.malfile.patch_mal`);
* :mod:`attackprev.mal.mapping` reads the technique -> enterpriseLang step table and each
  technique's probability from the reports (:func:`~attackprev.mal.mapping.load_steps`,
  :func:`~attackprev.mal.mapping.estimates_from_catalogue`);
* :mod:`attackprev.mal.export` exports every technique's TTC and optionally patches a
  ``.mal`` file, for securiCAD or mal-simulator (:func:`~attackprev.mal.export.export_mal`).
"""
