"""Stage 6, what the notebooks use: figures, widgets, the FM lesson, and the
Papermill runner behind ``make reproduce``."""
