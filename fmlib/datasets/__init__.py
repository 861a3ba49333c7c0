"""Stage 3, the data: the random-patch sampler, the training dataset (writer,
reader, workers), its statistics, NSynth and the SoundFont evaluation set.

Named ``datasets`` rather than ``data``: ``data/`` is the repository's folder of
derived artefacts (:data:`fmlib.paths.DATA_DIR`), which this code writes into."""
