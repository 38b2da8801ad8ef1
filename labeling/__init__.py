"""The labelling loop: Label Studio projects, pre-annotated pushes, pulls into training data, retraining."""
