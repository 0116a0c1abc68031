"""Data: raw readers, offline encoders, feature files, dataset preparation, and the dataset
hook (``MultimodalSequentialDataset``) through which models read modal features."""
