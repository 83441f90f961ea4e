"""A pipeline run: building the pipeline, the package loop, the run lock and the dataset's turn,
the working folder, what a failed run may remove, and the summary."""
