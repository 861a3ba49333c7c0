"""Stage 4, the estimators: the paper's CNN (model, training, Keras data,
prediction) and the analysis-and-search matcher, behind one estimator interface."""
