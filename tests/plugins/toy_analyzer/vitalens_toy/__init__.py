"""vitalens-toy: a plug-in analyzer registered through the ``vitalens.analyzers`` entry point."""
