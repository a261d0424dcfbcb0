"""Plain classifiers from the bearing-diagnosis literature, trained by the same engine as AGT-NO for comparison."""
