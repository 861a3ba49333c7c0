"""Stage 2, the audio layer that estimators and evaluation share: audio I/O,
resampling, distances, analysis and timbre descriptors."""
