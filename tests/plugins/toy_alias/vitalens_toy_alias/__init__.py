"""vitalens-toy-alias: a plug-in analyzer with a short name and a companion, through the entry point alone."""
